"""The worked examples of docs/protocol.md's appendix ("Trust"), built from their fixed seeds.

Shared by the statement tests, the chain-evaluation tests and the JS compatibility tests, so
the document, the Python code and the JS code are checked against the same values.
"""

from __future__ import annotations

from typing import Any

from nacl.public import PrivateKey

from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.statements import public_key_of, sign_statement, statement_hash

T = 1767225600
ORG, OWNER, INVITEE, CHANNEL = (
    "o_aaaaaaaaaaaaaaaa",
    "m_aaaaaaaaaaaaaaaa",
    "m_bbbbbbbbbbbbbbbb",
    "c_aaaaaaaaaaaaaaaa",
)
OWNER_IK, TICKET_SEED, INVITEE_IK = bytes([0x11]) * 32, bytes([0x22]) * 32, bytes([0x33]) * 32
LINK_TICKET_SEED, LINKED_SIGN, LINKED_BOX = bytes([0x44]) * 32, bytes([0x55]) * 32, bytes([0x66]) * 32
OWNER_DEVICE_SIGN, OWNER_DEVICE_BOX = bytes(range(32)), bytes(range(32, 64))
INVITEE_DEVICE_SIGN, INVITEE_DEVICE_BOX = bytes(range(96, 128)), bytes(range(64, 96))
ROOT = "ELpoLIrRNROXHotWiBqri9cCu4B3luyoGTLHNalNbm0"

#: name -> (sig, hash), as printed in docs/protocol.md.
VECTORS = {
    "mc_root": (
        "CmYChta-hZpzPJ43dyKqpJ-aiwjogPQE7RBvxEKDi71HplMO0B5HEA_MhBcGohPb0g29yt46iJ4G_ItSTYyXBg",
        "fWtf1amzhT1BmEEchl9e3XTRgrDVw6OgkcPoqnRsmKg",
    ),
    "dc_own": (
        "XIjIBDbRWa5e3Hfl_JBAh9nIbSZMoRQdnr_GDGM762ZkU14csLnpbeVbgxlHpwS_62RSBW5yvO69WoZk2NkkCQ",
        "v3PLmrreMbaCUcfGStjXWNdXg3Ni6sUxwerbD5UyVmM",
    ),
    "ticket": (
        "EXTFCg5om604NMMSF760IzZc40CiAtvf3c0S4vBjvDZU8wWGShvit3wmGM6G57UlxaUptP1ew_E5hYtLkspbBQ",
        "I1vzGGSGACQmogB4m8FOKlW6R7ieFmhuD2JjgR_HUwc",
    ),
    "mc_inv": (
        "QiCxZf_jPZUdLGbQP6sCQb7NtcUySLcLpudlaTMpbZRLQTsUoXpZlQ0j8Y4pCnMjLlldTqpWjSgOyjSaeqdGCw",
        "gaE2MqGjZVUiU18CW1YiXhl3w2koqIVqSdBKykylgdQ",
    ),
    "dc_inv": (
        "Wt6b2Do5bA1JtkqIN4PbU1dOdUM2P846VfvRhZT972yO3By78LzXK2KmUw7IgkbShd9QSR3qyAhDo7kwyLkADA",
        "MwH3QzEZ0itBjP5UlYzs6c8fsl5LPWxOL1NwSBFJZjA",
    ),
    "lticket": (
        "E7WNGo8SZfDqDnu3eLsGLO95isEyYXdFOY8K9LS8ArVpIy7EId2sdp-u0aiwghOkg5V-EyoHpqdoS77wlYlNBA",
        "bdUQ_lkoyHSMwDTujGO2srjo0Dr-FLoz6b3PARU-J14",
    ),
    "dc_link": (
        "Z71UEr9CCypoySxa20JwNZTvunTdqs2xLRuHm_3_yzUTHfnh5kSfp_QLLJ_GEcv5x13L-_xbY2QrPhZBpDsmBQ",
        "-N8QxpQTmhWPqii3ldiPR7t9LDfNUB4CafiU_ii_U1g",
    ),
    "role": (
        "6jz5IQwnHGVUysyQHXjG9uirJbd0a_fL3pJjAIf8im_gzHz_BWMbq9rq0F3Jce1jCrX30Sh3zI7MJy4QTdN5AA",
        "NpkeQ0KdM5Wx3mTqAd0aBhJvUjAwr6KyOg6ZxUBdCYI",
    ),
    "revoc": (
        "KAUhOs8NMRccQZthsMljioWpTl9aHEpfBiITftRI3WZZjgVgGC2zcUo9VaH1nX6JyRt4MpUB-_nJWjTVTfGaCA",
        "-cRu38VXO2mwQiBNV3F6iGnnqRfBvZrTlHvotIAob5Q",
    ),
    "removal": (
        "eo8rQx7m_i1juLS3mSRpz6WbB7pniT4VKrFIrSBZr48hENUAjd2btl_2oP0bmwr320Bx1azxdw8LZYLpXfeDCQ",
        "Nu64EJ0ZyEwXU1gdn17n7JMGAS0Y_GdF7fk01bh1mYE",
    ),
    "op0": (
        "OgIzpvfN12TMnzTviZ39xgh8k7LA10eSFPi1XP0W5kJbSPFoEJWjFFt3q9QqKM4csITvXdyAou2dPCSxYMOtCQ",
        "bvE68TmpZsBcEpsTx4OR7nkO5llhMvJ7p6-xCXhaAWg",
    ),
    "op1": (
        "4A6mteTKVsLW0g8-EfTXsHqUxPGRtclFud42_Uy7I-QnEo0UfB8CqfFJ6sVQY2YZGmbTEVqxGuZZ7x2qQ3D3CQ",
        "h78F_47dJ7fPxkanElE-fkm2-JQET5jLw2TnGBcizcs",
    ),
    "notify": (
        "hSECWkm0eAl596zdtI3TvX0DUeN4p9jRxMS6J6yueFOLMPeZjEvtarinJpmeAFgPH8vnFsb0MA1pQFSaqYEzDQ",
        "yIYS9xYYMgPan5pCcejWufHOX7cnEvHwWy6h1mG0NTo",
    ),
}
SAFETY_NUMBER = "21096 43630 10971 71484 50396 85558 39914 11820 18960 54560 15098 43825"


def box_public(secret: bytes) -> str:
    return b64e(bytes(PrivateKey(secret).public_key))


def device_id(seed: bytes) -> str:
    return device_id_for(b64d(public_key_of(seed)))


def _device_cert(
    member: str, sign: bytes, box: bytes, identity: bytes, ticket_key: str | None, at: int, seed: bytes
) -> dict[str, Any]:
    body = {
        "purpose": "bocage/device-cert/v2",
        "org_id": ORG,
        "member_id": member,
        "device_id": device_id(sign),
        "sign_public_key": public_key_of(sign),
        "box_public_key": box_public(box),
        "identity_key": public_key_of(identity),
        "ticket_key": ticket_key,
        "issued_at": at,
    }
    return sign_statement(body, seed)


def members_and_devices(v: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What ``GET /members`` would return for the worked examples (no role, removal, revocation)."""
    members: list[dict[str, Any]] = [
        {
            "member_id": OWNER,
            "member_cert": v["mc_root"],
            "ticket": None,
            "role_statements": [],
            "removal": None,
        },
        {
            "member_id": INVITEE,
            "member_cert": v["mc_inv"],
            "ticket": v["ticket"],
            "role_statements": [],
            "removal": None,
        },
    ]
    devices = [
        _device_row(v["dc_own"], None),
        _device_row(v["dc_inv"], None),
        _device_row(v["dc_link"], v["lticket"]),
    ]
    return members, devices


def _device_row(cert: dict[str, Any], ticket: dict[str, Any] | None) -> dict[str, Any]:
    fields = ("device_id", "member_id", "sign_public_key", "box_public_key")
    return {**{f: cert[f] for f in fields}, "device_cert": cert, "ticket": ticket, "revocation": None}


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every worked example, signed afresh (Ed25519 is deterministic)."""
    owner_dev, invitee_dev = device_id(OWNER_DEVICE_SIGN), device_id(INVITEE_DEVICE_SIGN)
    out: dict[str, dict[str, Any]] = {}
    out["mc_root"] = sign_statement(
        {
            "purpose": "bocage/member-cert/v2",
            "org_id": ORG,
            "member_id": OWNER,
            "identity_key": public_key_of(OWNER_IK),
            "display_name": "Claire Fontaine",
            "ticket_key": None,
            "root": True,
            "issued_at": T,
        },
        OWNER_IK,
    )
    out["dc_own"] = _device_cert(OWNER, OWNER_DEVICE_SIGN, OWNER_DEVICE_BOX, OWNER_IK, None, T, OWNER_IK)
    out["ticket"] = sign_statement(
        {
            "purpose": "bocage/ticket/v2",
            "org_id": ORG,
            "grant": "member",
            "ticket_key": public_key_of(TICKET_SEED),
            "role": "member",
            "display_name": "Élise Martin",
            "issuer_device": owner_dev,
            "issued_at": T,
            "expires_at": T + 7 * 86400,
        },
        OWNER_DEVICE_SIGN,
    )
    out["mc_inv"] = sign_statement(
        {
            "purpose": "bocage/member-cert/v2",
            "org_id": ORG,
            "member_id": INVITEE,
            "identity_key": public_key_of(INVITEE_IK),
            "display_name": "Élise Martin",
            "ticket_key": public_key_of(TICKET_SEED),
            "root": False,
            "issued_at": T + 60,
        },
        TICKET_SEED,
    )
    out["dc_inv"] = _device_cert(
        INVITEE, INVITEE_DEVICE_SIGN, INVITEE_DEVICE_BOX, INVITEE_IK, None, T + 60, INVITEE_IK
    )
    out["lticket"] = sign_statement(
        {
            "purpose": "bocage/ticket/v2",
            "org_id": ORG,
            "grant": "device",
            "ticket_key": public_key_of(LINK_TICKET_SEED),
            "member_id": INVITEE,
            "issuer_device": invitee_dev,
            "issued_at": T + 100,
            "expires_at": T + 86400,
        },
        INVITEE_DEVICE_SIGN,
    )
    out["dc_link"] = _device_cert(
        INVITEE,
        LINKED_SIGN,
        LINKED_BOX,
        INVITEE_IK,
        public_key_of(LINK_TICKET_SEED),
        T + 120,
        LINK_TICKET_SEED,
    )
    out["role"] = sign_statement(
        {
            "purpose": "bocage/role/v2",
            "org_id": ORG,
            "member_id": INVITEE,
            "identity_key": public_key_of(INVITEE_IK),
            "role": "admin",
            "serial": 1,
            "issued_at": T + 180,
            "by_device": owner_dev,
        },
        OWNER_DEVICE_SIGN,
    )
    out["revoc"] = sign_statement(
        {
            "purpose": "bocage/revocation/v2",
            "org_id": ORG,
            "member_id": INVITEE,
            "device_id": device_id(LINKED_SIGN),
            "sign_public_key": public_key_of(LINKED_SIGN),
            "issued_at": T + 240,
            "by_device": invitee_dev,
        },
        INVITEE_DEVICE_SIGN,
    )
    out["removal"] = sign_statement(
        {
            "purpose": "bocage/removal/v2",
            "org_id": ORG,
            "member_id": INVITEE,
            "identity_key": public_key_of(INVITEE_IK),
            "issued_at": T + 300,
            "by_device": owner_dev,
        },
        OWNER_DEVICE_SIGN,
    )
    out["op0"] = sign_statement(
        {
            "purpose": "bocage/membership/v2",
            "org_id": ORG,
            "channel_id": CHANNEL,
            "seq": 0,
            "prev": None,
            "op": "create",
            "member_id": OWNER,
            "role": "author",
            "kind": "group",
            "by_device": owner_dev,
            "issued_at": T + 200,
        },
        OWNER_DEVICE_SIGN,
    )
    out["op1"] = sign_statement(
        {
            "purpose": "bocage/membership/v2",
            "org_id": ORG,
            "channel_id": CHANNEL,
            "seq": 1,
            "prev": statement_hash(out["op0"]),
            "op": "add",
            "member_id": INVITEE,
            "role": "member",
            "kind": None,
            "by_device": owner_dev,
            "issued_at": T + 210,
        },
        OWNER_DEVICE_SIGN,
    )
    out["notify"] = sign_statement(
        {
            "purpose": "bocage/notify/v2",
            "org_id": ORG,
            "channel_id": CHANNEL,
            "member_id": INVITEE,
            "mentions_only": True,
            "issued_at": T + 300,
            "by_device": invitee_dev,
        },
        INVITEE_DEVICE_SIGN,
    )
    return out
