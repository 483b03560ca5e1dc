"""The web app's trust code (web/js/certs.js, membership.js) against the Python implementation.

Under node, like test_wire_compat.py: the JS reproduces docs/protocol.md's worked examples byte
for byte, verifies what Python signs and the reverse, and reaches the same verdict as
bocage/client/certs.py on every member and device of the same organisation, honest or forged.
Then the malicious server's moves (ghost device, swapped key, unsigned or unauthorised addition,
rolled-back or forked log, forged sender) are played against the JS: each is detected and no
sender key would go to the attacker's device.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bocage.client.certs import TrustView, TrustWarning
from bocage.client.membership import MembershipRefused, sync
from bocage.client.profile import DeviceKeys, Profile
from bocage.client.trust import Trust
from chalicelib.domain import membership_log
from chalicelib.domain.activation_link import activation_url, with_fragment_params
from chalicelib.domain.encoding import b64e
from chalicelib.domain.statements import (
    StatementError,
    fingerprint,
    public_key_of,
    sign_statement,
    statement_hash,
    verify_statement,
)
from tests.trust_vectors import (
    CHANNEL,
    INVITEE,
    INVITEE_DEVICE_SIGN,
    INVITEE_IK,
    LINKED_SIGN,
    ORG,
    OWNER,
    OWNER_DEVICE_SIGN,
    OWNER_IK,
    ROOT,
    SAFETY_NUMBER,
    TICKET_SEED,
    VECTORS,
    T,
    box_public,
    build_vectors,
    device_id,
    members_and_devices,
)
from tests.wire_js import run_harness

HARNESS = Path(__file__).with_name("trust_harness.mjs")
OWNER_DEVICE = "d_kzdvvj2umnduyauf"
INVITEE_DEVICE = "d_nceu2whrr4wdjve6"
LINKED = device_id(LINKED_SIGN)
GHOST_SIGN, GHOST_IK = bytes([0x77]) * 32, bytes([0x78]) * 32


def run_js(*commands: dict[str, Any]) -> list[Any]:
    return run_harness(HARNESS, *commands)


def js(op: str, **args: Any) -> Any:
    return run_js({"op": op, **args})[0]


def body(statement: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in statement.items() if k != "sig"}


def org() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    v = build_vectors()
    members, devices = members_and_devices(v)
    return v, members, devices


def scene(members: list[dict[str, Any]], devices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"org_id": ORG, "root": ROOT, "members": members, "devices": devices, **extra}


def python_verdicts(s: dict[str, Any]) -> dict[str, Any]:
    """What bocage/client/certs.py decides, in the harness's shape."""
    view = TrustView(
        s["org_id"], s["root"], s["members"], s["devices"], verified=s.get("verified"), seen=s.get("seen")
    )
    members = {}
    for m in s["members"]:
        mid = m["member_id"]
        trust = view.member(mid)
        why = view.why_not_member(mid)
        members[mid] = {
            "trusted": trust is not None,
            "display_name": trust.display_name if trust else None,
            "role": view.role(mid),
            "certified": view.certified(mid),
            "vouched_only": view.vouched_only(mid),
            "why_not": why.code if why else None,
            "removed_at": view.removed_at(mid),
        }
    devices = {}
    for d in s["devices"]:
        did = d["device_id"]
        why_d = view.why_not(did)
        devices[did] = {
            "trusted": view.device(did) is not None,
            "usable": view.usable(did) is not None,
            "why_not": why_d.code if why_d else None,
            "revoked_at": view.revoked_at(did),
        }
    return {"members": members, "devices": devices}


# -- the worked examples, byte for byte -----------------------------------------------------------


def test_js_signs_every_worked_example_byte_for_byte() -> None:
    v = build_vectors()
    seeds = {
        "mc_root": OWNER_IK,
        "dc_own": OWNER_IK,
        "ticket": OWNER_DEVICE_SIGN,
        "mc_inv": TICKET_SEED,
        "dc_inv": INVITEE_IK,
        "lticket": INVITEE_DEVICE_SIGN,
        "dc_link": bytes([0x44]) * 32,
        "role": OWNER_DEVICE_SIGN,
        "revoc": INVITEE_DEVICE_SIGN,
        "removal": OWNER_DEVICE_SIGN,
        "op0": OWNER_DEVICE_SIGN,
        "op1": OWNER_DEVICE_SIGN,
        "notify": INVITEE_DEVICE_SIGN,
    }
    names = list(VECTORS)
    signed = run_js(*({"op": "sign", "body": body(v[n]), "seed": b64e(seeds[n])} for n in names))
    for name, out in zip(names, signed, strict=True):
        assert (out["statement"]["sig"], out["hash"]) == VECTORS[name], name
        assert out["statement"] == v[name], name
        assert statement_hash(out["statement"]) == out["hash"]


def test_js_and_python_check_each_others_signatures() -> None:
    v = build_vectors()
    ik = public_key_of(OWNER_IK)
    tampered = {**v["mc_root"], "display_name": "Claire Fontaine (faux)"}
    results = run_js(
        {"op": "verify", "statement": v["mc_root"], "purpose": "bocage/member-cert/v2", "key": ik},
        {"op": "verify", "statement": tampered, "purpose": "bocage/member-cert/v2", "key": ik},
        {"op": "verify", "statement": v["mc_root"], "purpose": "bocage/device-cert/v2", "key": ik},
        {
            "op": "verify",
            "statement": {**v["mc_root"], "extra": 1},
            "purpose": "bocage/member-cert/v2",
            "key": ik,
        },
        {
            "op": "verify",
            "statement": {**v["mc_root"], "purpose": "bocage/member-cert/v1"},
            "purpose": "bocage/member-cert/v2",
            "key": ik,
        },
        {"op": "verify", "statement": {**v["role"], "serial": True}, "purpose": "bocage/role/v2", "key": ik},
        {"op": "sign", "body": {**body(v["mc_inv"]), "display_name": " padded"}, "seed": b64e(TICKET_SEED)},
    )
    assert results[0] == {"ok": True}
    assert [r["error"] for r in results[1:]] == ["StatementError"] * 6
    assert "signature does not verify" in results[1]["message"]
    assert "update it" in results[4]["message"]
    with pytest.raises(StatementError):
        verify_statement(tampered, "bocage/member-cert/v2", ik)
    # A statement the JS makes for a fresh body is accepted by the Python (the server's) check.
    fresh = {**body(v["mc_inv"]), "display_name": "Zoé « test » 🌳", "issued_at": T + 999}
    made = js("sign", body=fresh, seed=b64e(TICKET_SEED))["statement"]
    assert verify_statement(made, "bocage/member-cert/v2", public_key_of(TICKET_SEED)) == made


def test_root_fingerprint_safety_number_qr_and_activation_url() -> None:
    owner_ik, invitee_ik = public_key_of(OWNER_IK), public_key_of(INVITEE_IK)
    fp, safety, swapped, typed, wrong = run_js(
        {"op": "fingerprint", "key": owner_ik},
        {"op": "safety", "a": owner_ik, "b": invitee_ik, "org_id": ORG, "member_id": OWNER},
        {"op": "safety", "a": invitee_ik, "b": owner_ik, "org_id": ORG, "member_id": INVITEE},
        {"op": "parse_verification", "text": f"  {SAFETY_NUMBER}  "},
        {"op": "parse_verification", "text": SAFETY_NUMBER[:-1]},
    )
    assert fp == ROOT == fingerprint(owner_ik)
    assert safety["number"] == swapped["number"] == SAFETY_NUMBER
    digits = SAFETY_NUMBER.replace(" ", "")
    assert safety["payload"] == f"bocage-verify:v2:{ORG}:{OWNER}:{digits}"
    assert safety["parsed"] == {"digits": digits, "org_id": ORG, "member_id": OWNER}
    assert typed == {"digits": digits, "org_id": None, "member_id": None} and wrong is None

    code = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567"
    server_url = activation_url(
        "https://app.example.org", "https://api.example.org", code, org=ORG, member=INVITEE
    )
    secret = {"ticket": b64e(TICKET_SEED), "root": ROOT}
    assert js("with_fragment", url=server_url, params=secret) == with_fragment_params(server_url, **secret)
    assert js("with_fragment", url=server_url, params=secret) == (
        "https://app.example.org/#/activate?server=https%3A%2F%2Fapi.example.org"
        f"&code={code}&org={ORG}&member={INVITEE}&ticket=IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI"
        f"&root={ROOT}"
    )


def test_low_order_box_keys_are_recognised() -> None:
    p = 2**255 - 19
    bad = [0, 1, p - 1, p, p + 1]
    bad += [
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    ]
    keys = [b64e(u.to_bytes(32, "little")) for u in bad]
    keys.append(b64e((1 | 1 << 255).to_bytes(32, "little")))  # top bit set: still the point 1
    good = [box_public(bytes(range(32, 64))), box_public(bytes([0x66]) * 32)]
    results = run_js(*({"op": "small_order", "key": k} for k in [*keys, *good]))
    assert results == [True] * len(keys) + [False] * len(good)


def test_activation_certificates_are_what_the_server_accepts() -> None:
    """Each kind of invitation (13.4): the JS's certificates pass the Python chain evaluation."""
    from chalicelib.domain.certificates import check_device_cert

    v, members, devices = org()
    sign, box = bytes([0x31]) * 32, bytes([0x32]) * 32
    keys = {
        "device_id": device_id(sign),
        "sign_public_key": public_key_of(sign),
        "box_public_key": box_public(box),
    }
    new_member = "m_cccccccccccccccc"
    link_ticket_seed = bytes([0x45]) * 32
    ticket = sign_statement(
        {**body(v["ticket"]), "ticket_key": public_key_of(bytes([0x23]) * 32), "display_name": "Noé"},
        OWNER_DEVICE_SIGN,
    )
    lticket = sign_statement(
        {**body(v["lticket"]), "ticket_key": public_key_of(link_ticket_seed)}, INVITEE_DEVICE_SIGN
    )
    invited, linked = run_js(
        {
            "op": "activation_certs",
            "link": {"org": ORG, "member": new_member, "ticket": b64e(bytes([0x23]) * 32), "root": ROOT},
            "keys": keys,
            "display_name": "Noé Petit",
            "now": T + 500,
            "identity_seed": b64e(bytes([0x34]) * 32),
        },
        {
            "op": "activation_certs",
            "link": {
                "org": ORG,
                "member": INVITEE,
                "ticket": b64e(link_ticket_seed),
                "root": ROOT,
                "ik": public_key_of(INVITEE_IK),
            },
            "keys": keys,
            "display_name": "",
            "now": T + 500,
        },
    )
    assert (
        invited["member_cert"]["root"] is False
        and invited["member_cert"]["ticket_key"] == ticket["ticket_key"]
    )
    assert linked["member_cert"] is None and linked["device_cert"]["identity_key"] == public_key_of(
        INVITEE_IK
    )
    row = {
        **keys,
        "member_id": new_member,
        "device_cert": invited["device_cert"],
        "ticket": None,
        "revocation": None,
    }
    member = {
        "member_id": new_member,
        "member_cert": invited["member_cert"],
        "ticket": ticket,
        "role_statements": [],
        "removal": None,
    }
    view = TrustView(ORG, ROOT, [*members, member], [*devices, row])
    assert view.role(new_member) == "member" and view.usable(keys["device_id"]) is not None
    link_row = {
        **keys,
        "member_id": INVITEE,
        "device_cert": linked["device_cert"],
        "ticket": lticket,
        "revocation": None,
    }
    view = TrustView(ORG, ROOT, members, [*devices, link_row])
    assert view.usable(keys["device_id"]) is not None, view.why_not(keys["device_id"])
    check_device_cert(
        linked["device_cert"],
        org_id=ORG,
        member_id=INVITEE,
        identity_key=public_key_of(INVITEE_IK),
        ticket=lticket,
        **{k: keys[k] for k in ("sign_public_key", "box_public_key")},
    )


# -- the same verdicts as the Python chain evaluation ----------------------------------------------


def _scenes() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    v, members, devices = org()
    out["honest"] = scene(members, devices)
    out["another root"] = {**scene(members, devices), "root": b64e(bytes(32))}
    out["another org"] = {**scene(members, devices), "org_id": "o_bbbbbbbbbbbbbbbb"}

    v, members, devices = org()
    members[1]["role_statements"] = [v["role"]]
    devices[2]["revocation"] = v["revoc"]
    out["role and revocation"] = scene(members, devices)
    members = copy.deepcopy(members)
    members[1]["removal"] = v["removal"]
    out["removal"] = scene(members, devices)

    v, members, devices = org()
    members[1]["role_statements"] = [
        sign_statement(
            {**body(v["role"]), "by_device": INVITEE_DEVICE, "role": "owner", "serial": 5},
            INVITEE_DEVICE_SIGN,
        )
    ]
    out["self-signed role"] = scene(members, devices)

    v, members, devices = org()
    out["identity changed"] = scene(members, devices, seen={INVITEE: public_key_of(bytes([1]) * 32)})
    out["verified identity changed"] = scene(
        members, devices, verified={INVITEE: public_key_of(bytes([1]) * 32)}
    )

    v, members, devices = org()
    cert = {**body(v["mc_inv"]), "ticket_key": None}
    members[1] = {**members[1], "member_cert": sign_statement(cert, INVITEE_IK), "ticket": None}
    out["e-mail invitee"] = scene(members, devices)
    out["e-mail invitee verified"] = scene(members, devices, verified={INVITEE: public_key_of(INVITEE_IK)})
    endorsed = copy.deepcopy(members)
    endorsed[1]["role_statements"] = [v["role"]]
    out["e-mail invitee endorsed"] = scene(endorsed, devices)

    v, members, devices = org()
    second = {**copy.deepcopy(members[1]), "member_id": "m_cccccccccccccccc"}
    out["ticket reused"] = scene([*members, second], devices)

    v, members, devices = org()
    low = {**body(v["dc_inv"]), "box_public_key": b64e(bytes(32))}
    devices[1] = {
        **devices[1],
        "box_public_key": low["box_public_key"],
        "device_cert": sign_statement(low, INVITEE_IK),
    }
    out["low-order box key"] = scene(members, devices)

    v, members, devices = org()
    devices[2]["ticket"] = sign_statement(
        {**body(v["lticket"]), "issuer_device": OWNER_DEVICE}, OWNER_DEVICE_SIGN
    )
    out["linked by another member"] = scene(members, devices)

    v, members, devices = org()
    expired = {**body(v["mc_inv"]), "issued_at": v["ticket"]["expires_at"] + 1}
    members[1]["member_cert"] = sign_statement(expired, TICKET_SEED)
    out["certified after the ticket expired"] = scene(members, devices)

    v, members, devices = org()
    admin_ticket = sign_statement({**body(v["ticket"]), "role": "owner"}, OWNER_DEVICE_SIGN)
    members[1]["ticket"] = admin_ticket
    out["owner grants owner"] = scene(members, devices)
    out.update(_malicious_scenes())
    return out


def _ghost(members: list[dict[str, Any]], devices: list[dict[str, Any]], v: dict[str, Any]) -> dict[str, Any]:
    """A device row the attacker added under a real member, certified by a key of its own."""
    cert = {
        **body(v["dc_inv"]),
        "device_id": device_id(GHOST_SIGN),
        "sign_public_key": public_key_of(GHOST_SIGN),
        "box_public_key": box_public(bytes([0x79]) * 32),
    }
    forged = sign_statement(cert, GHOST_IK)
    return {
        "device_id": forged["device_id"],
        "member_id": INVITEE,
        "sign_public_key": forged["sign_public_key"],
        "box_public_key": forged["box_public_key"],
        "device_cert": forged,
        "ticket": None,
        "revocation": None,
    }


def _malicious_scenes() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    v, members, devices = org()
    out["ghost device"] = scene(members, [*devices, _ghost(members, devices, v)])
    v, members, devices = org()
    devices[1]["box_public_key"] = box_public(bytes([0x79]) * 32)
    out["swapped box key"] = scene(members, devices)
    v, members, devices = org()
    # A member minted by the server: a certificate signed by a ticket key nobody was given.
    rogue_ticket_seed = bytes([0x7A]) * 32
    rogue = sign_statement(
        {
            **body(v["mc_inv"]),
            "member_id": "m_dddddddddddddddd",
            "ticket_key": public_key_of(rogue_ticket_seed),
        },
        rogue_ticket_seed,
    )
    rogue_ticket = {**v["ticket"], "ticket_key": public_key_of(rogue_ticket_seed)}  # sig no longer matches
    out["minted member"] = scene(
        [
            *members,
            {
                "member_id": "m_dddddddddddddddd",
                "member_cert": rogue,
                "ticket": rogue_ticket,
                "role_statements": [],
                "removal": None,
            },
        ],
        devices,
    )
    return out


def test_js_reaches_the_python_verdict_on_every_scene() -> None:
    scenes = _scenes()
    results = run_js(*({"op": "evaluate", **s} for s in scenes.values()))
    cached = run_js(*({"op": "evaluate", "cached": True, **s} for s in scenes.values()))
    for (name, s), got, prewarmed in zip(scenes.items(), results, cached, strict=True):
        assert got == python_verdicts(s), name
        assert prewarmed == got, name  # signatures checked ahead by WebCrypto: the same verdicts
    by_name = dict(zip(scenes, results, strict=True))
    honest = by_name["honest"]
    assert all(d["usable"] for d in honest["devices"].values())
    assert honest["members"][INVITEE]["display_name"] == "Élise Martin"
    assert by_name["ghost device"]["devices"][device_id(GHOST_SIGN)]["usable"] is False
    assert by_name["swapped box key"]["devices"][INVITEE_DEVICE]["why_not"] == "uncertified_device"
    assert by_name["minted member"]["members"]["m_dddddddddddddddd"]["trusted"] is False
    assert by_name["identity changed"]["members"][INVITEE]["why_not"] == "identity_changed"
    assert by_name["e-mail invitee"]["members"][INVITEE]["why_not"] == "server_vouched"
    assert by_name["ticket reused"]["members"][INVITEE]["why_not"] == "ticket_reused"
    assert by_name["low-order box key"]["devices"][INVITEE_DEVICE]["usable"] is False


# -- the membership log ---------------------------------------------------------------------------


def _entry(
    seq: int, prev: str | None, op: str, member: str, role: str | None, signer: bytes, **kw: Any
) -> dict[str, Any]:
    return sign_statement(
        {
            "purpose": "bocage/membership/v2",
            "org_id": kw.get("org", ORG),
            "channel_id": kw.get("channel", CHANNEL),
            "seq": seq,
            "prev": prev,
            "op": op,
            "member_id": member,
            "role": role,
            "kind": kw.get("kind"),
            "by_device": kw.get("by", device_id(signer)),
            "issued_at": kw.get("at", T + 200 + seq),
        },
        signer,
    )


def test_membership_replay_matches_python() -> None:
    v, members, devices = org()
    op2 = _entry(2, statement_hash(v["op1"]), "leave", INVITEE, None, INVITEE_DEVICE_SIGN)
    logs = {
        "honest": [v["op0"], v["op1"], op2],
        "unsigned addition": [v["op0"], {**v["op1"], "sig": v["op0"]["sig"]}],
        "added by a plain member": [
            v["op0"],
            v["op1"],
            _entry(2, statement_hash(v["op1"]), "add", "m_cccccccccccccccc", "member", INVITEE_DEVICE_SIGN),
        ],
        "broken chain": [v["op0"], _entry(1, "A" * 43, "add", INVITEE, "member", OWNER_DEVICE_SIGN)],
        "tribe by a member": [
            _entry(0, None, "create", INVITEE, "author", INVITEE_DEVICE_SIGN, kind="tribe")
        ],
        # Dated well before the entry it follows (a removed signer's backdating, 14 "Dates"):
        # both stop there; 600 s back (another device's clock) is still believed.
        "dated before the entries it follows": [
            v["op0"],
            v["op1"],
            op3 := _entry(
                2, statement_hash(v["op1"]), "role", INVITEE, "author", OWNER_DEVICE_SIGN, at=T + 2000
            ),
            skewed := _entry(
                3, statement_hash(op3), "role", INVITEE, "member", OWNER_DEVICE_SIGN, at=T + 1400
            ),
            _entry(4, statement_hash(skewed), "remove", INVITEE, None, OWNER_DEVICE_SIGN, at=T + 1399),
        ],
        "signed by a ghost": [
            v["op0"],
            _entry(1, statement_hash(v["op0"]), "add", INVITEE, "member", GHOST_SIGN),
        ],
        # The host is the creation's organisation: a later entry naming another one stops the
        # replay in both clients (22.6), even signed by the owner's certified device.
        "names another organisation": [
            v["op0"],
            _entry(
                1,
                statement_hash(v["op0"]),
                "add",
                INVITEE,
                "member",
                OWNER_DEVICE_SIGN,
                org="o_bbbbbbbbbbbbbbbb",
            ),
        ],
    }
    ghost_devices = [*devices, _ghost(members, devices, v)]
    view = TrustView(ORG, ROOT, members, ghost_devices)
    results = run_js(
        *({"op": "replay", **scene(members, ghost_devices), "entries": e} for e in logs.values())
    )
    for (name, entries), got in zip(logs.items(), results, strict=True):
        state, error = membership_log.replay(entries, view)
        assert got["state"] == (state.to_json() if state else None), name
        assert (got["error"] is None) == (error is None), name
    honest = results[0]["state"]
    assert honest["members"] == {OWNER: "author"} and honest["seq"] == 2
    assert results[1]["state"]["members"] == {OWNER: "author"} and "signature" in results[1]["error"]
    backdated = results[list(logs).index("dated before the entries it follows")]
    assert backdated["state"]["seq"] == 3 and backdated["state"]["issued_at"] == T + 2000
    assert "dated before the entries it follows" in backdated["error"]
    elsewhere = results[-1]
    assert elsewhere["state"] == {
        **honest,
        "members": {OWNER: "author"},
        "seq": 0,
        "head": statement_hash(v["op0"]),
        "former": {},
        "issued_at": v["op0"]["issued_at"],
    }
    assert elsewhere["state"]["org_id"] == ORG and "another organisation" in elsewhere["error"]


def test_the_web_client_refuses_a_rolled_back_or_forked_log() -> None:
    v, members, devices = org()
    kept = membership_log.replay([v["op0"], v["op1"]], TrustView(ORG, ROOT, members, devices))[0]
    assert kept is not None
    kept_json = kept.to_json()
    forked = _entry(1, statement_hash(v["op0"]), "add", INVITEE, "author", OWNER_DEVICE_SIGN)
    op2 = _entry(2, statement_hash(v["op1"]), "role", INVITEE, "author", OWNER_DEVICE_SIGN)
    unsigned3 = {
        **_entry(3, statement_hash(op2), "add", "m_cccccccccccccccc", "member", OWNER_DEVICE_SIGN),
        "sig": op2["sig"],
    }
    s = scene(members, devices)
    rollback, fork, extended, invalid, fresh = run_js(
        {
            "op": "advance",
            **s,
            "kept": kept_json,
            "answer": {"entries": [v["op0"]], "head": {"seq": 0, "hash": VECTORS["op0"][1]}},
        },
        {
            "op": "advance",
            **s,
            "kept": kept_json,
            "answer": {"entries": [forked], "head": {"seq": 1, "hash": statement_hash(forked)}},
        },
        {
            "op": "advance",
            **s,
            "kept": kept_json,
            "answer": {"entries": [v["op1"], op2], "head": {"seq": 2, "hash": statement_hash(op2)}},
        },
        {
            "op": "advance",
            **s,
            "cached": True,  # checked ahead by WebCrypto too: a copied signature still fails
            "kept": kept_json,
            "answer": {
                "entries": [v["op1"], op2, unsigned3],
                "head": {"seq": 3, "hash": statement_hash(unsigned3)},
            },
        },
        {
            "op": "advance",
            **s,
            "kept": None,
            "answer": {"entries": [v["op0"], v["op1"]], "head": {"seq": 1, "hash": VECTORS["op1"][1]}},
        },
    )
    assert rollback["blocked"] and rollback["state"] == kept_json
    assert [w["code"] for w in rollback["warnings"]] == ["membership_rollback"]
    assert fork["blocked"] and [w["code"] for w in fork["warnings"]] == ["membership_fork"]
    assert not extended["blocked"] and extended["state"]["members"] == {OWNER: "author", INVITEE: "author"}
    assert extended["state"]["head"] == statement_hash(op2) and extended["warnings"] == []
    assert not invalid["blocked"] and [w["code"] for w in invalid["warnings"]] == ["membership_invalid"]
    assert invalid["state"]["seq"] == 2 and "m_cccccccccccccccc" not in invalid["state"]["members"]
    assert fresh["state"] == kept_json


def test_both_clients_refuse_another_channel_s_log() -> None:
    """Asked for one channel, served another's log (from its creation, or over a state kept for
    the other): both clients keep no state for the asked channel and say membership_invalid."""
    v, members, devices = org()
    view = TrustView(ORG, ROOT, members, devices)
    other = "c_xxxxxxxxxxxxxxxx"
    log, head = [v["op0"], v["op1"]], {"seq": 1, "hash": VECTORS["op1"][1]}
    answer = {"entries": log, "head": head}
    kept = membership_log.replay(log, view)[0]
    assert kept is not None
    s = scene(members, devices)
    fresh, moved = run_js(
        {"op": "advance", **s, "kept": None, "channel_id": other, "answer": answer},
        {"op": "advance", **s, "kept": kept.to_json(), "channel_id": other, "answer": answer},
    )
    assert fresh["state"] is None and [w["code"] for w in fresh["warnings"]] == ["membership_invalid"]
    assert moved["state"] is None and moved["blocked"]
    assert [w["code"] for w in moved["warnings"]] == ["membership_invalid"]
    for state in (None, kept):
        with pytest.raises(MembershipRefused) as refused:
            sync(other, state, lambda start: (log[start:], head), view)
        assert refused.value.warning.code == "membership_invalid"


def test_both_clients_keep_who_left_and_judge_the_same_senders() -> None:
    """14.2: the same log gives the same ``former`` in both clients (a state kept without it
    rebuilt from entry 0, a fork still refused), and the same verdict on who may have sent what."""
    v, members, devices = org()
    view = TrustView(ORG, ROOT, members, devices)
    log = [v["op0"], v["op1"]]
    for seq, op, role, signer in (
        (2, "leave", None, INVITEE_DEVICE_SIGN),
        (3, "add", "member", OWNER_DEVICE_SIGN),
        (4, "remove", None, OWNER_DEVICE_SIGN),
    ):
        log.append(_entry(seq, statement_hash(log[-1]), op, INVITEE, role, signer))
    states = [membership_log.replay(log[: n + 1], view)[0] for n in range(1, 5)]  # in, left, back, removed
    assert [dict(s.former) for s in states if s] == [{}, {INVITEE: T + 202}, {}, {INVITEE: T + 204}]
    removed_ms = (T + 204) * 1000
    questions: list[tuple[str, object]] = [
        (OWNER, 1),
        (INVITEE, removed_ms),
        (INVITEE, removed_ms + 300_000),  # within the 5 minutes of clock skew
        (INVITEE, removed_ms + 300_001),
        (INVITEE, True),  # not a date
        (INVITEE, "1"),
        ("m_cccccccccccccccc", 1),  # never in
    ]
    s = scene(members, devices)
    legacy = {k: val for k, val in states[2].to_json().items() if k != "former"}  # type: ignore[union-attr]
    forked = [*log[:3], _entry(3, statement_hash(log[2]), "add", INVITEE, "author", OWNER_DEVICE_SIGN)]
    replayed, rebuilt, refused, verdicts = run_js(
        {"op": "replay", **s, "entries": log},
        {"op": "advance", **s, "kept": legacy, "answer": {"entries": log, "head": {"seq": 4}}},
        {"op": "advance", **s, "kept": legacy, "answer": {"entries": forked, "head": {"seq": 3}}},
        {
            "op": "refuses_sender",
            "states": [st.to_json() for st in states if st],
            "questions": [[*q, "message"] for q in questions],
        },
    )
    assert replayed["state"] == states[3].to_json()  # type: ignore[union-attr]
    legacy_state = membership_log.LogState.from_json(legacy)
    python_rebuilt, _ = sync(
        CHANNEL, legacy_state, lambda start: (log[start:], {"seq": 4}), view, rebuild=True
    )
    assert not rebuilt["blocked"] and rebuilt["state"] == python_rebuilt.to_json() == states[3].to_json()  # type: ignore[union-attr]
    assert refused["blocked"] and [w["code"] for w in refused["warnings"]] == ["membership_fork"]
    with pytest.raises(MembershipRefused) as python_refused:
        sync(CHANNEL, legacy_state, lambda start: (forked[start:], {"seq": 3}), view, rebuild=True)
    assert python_refused.value.warning.code == "membership_fork"
    python_verdicts = [[st.refuses_sender(m, at, "message") for m, at in questions] for st in states if st]
    assert verdicts == python_verdicts
    after = "sent after leaving the channel"
    assert python_verdicts[3] == [None, None, None, after, after, after, "not a member of this channel"]
    assert python_verdicts[2][1:4] == [None, None, None]  # back in: everything is theirs again


def test_both_clients_refuse_a_message_dated_after_its_device_s_revocation_or_removal() -> None:
    """Section 13.7: a message signed later than its device's revocation, or its member's removal
    from the organisation, + 300 s for the clocks, counts for nobody; earlier, it does. Both
    clients give the same verdict, a non-integer date refused once there is a date to compare."""
    at_ms = T * 1000
    questions: list[tuple[object, int | None, int | None]] = [
        (at_ms + 3_600_000, None, None),  # never revoked nor removed
        (at_ms, T, None),
        (at_ms + 300_000, T, None),  # within the clocks' skew
        (at_ms + 300_001, T, None),
        (at_ms + 300_001, None, T),
        (at_ms + 300_001, T + 1000, T),  # the removal first
        (at_ms - 1, T + 1000, T),
        (True, T, None),  # not a date
        ("1", None, T),
    ]
    (verdicts,) = run_js({"op": "refuses_ended_device", "questions": [list(q) for q in questions]})
    python = [membership_log.refuses_ended_device(*q) for q in questions]
    assert verdicts == python
    revoked, removed = (
        "sent after its device was revoked",
        "sent after its member was removed from the organisation",
    )
    assert python == [None, None, None, revoked, removed, removed, None, revoked, removed]


def offline_verdicts(
    members: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    stored: dict[str, Any],
    questions: list[list[Any]],
) -> dict[str, Any]:
    """The web app's verdicts on `questions` in CHANNEL, the owner's TrustKeeper over `stored`
    alone (an offline start, no listing verified)."""
    (got,) = run_js(
        {
            "op": "offline_senders",
            **scene(members, devices),
            "member_id": OWNER,
            "device_id": OWNER_DEVICE,
            "stored": stored,
            "channel_id": CHANNEL,
            "questions": questions,
        }
    )
    return cast(dict[str, Any], got)


def test_an_offline_web_app_refuses_by_the_revocations_and_removals_it_kept() -> None:
    """Before its listing is verified (an offline start), the web app judges a sender with the
    revocation and removal dates it kept (13.7, ours and a partner's) besides the kept log: a
    message dated after them is refused for that reason; one dated before, by the log alone."""
    v, members, devices = org()
    state = membership_log.replay([v["op0"], v["op1"]], TrustView(ORG, ROOT, members, devices))[0]
    assert state is not None and INVITEE in state.members
    partner_member, partner_device = "m_pppppppppppppppp", "d_pppppppppppppppp"
    stored = {
        "revoked": {ORG: {INVITEE_DEVICE: T}},
        "removed": {"o_partner": {partner_member: T}},
        "logs": {CHANNEL: state.to_json()},
        # A partner's removal is kept with the listing that named it; our invitee's id there
        # (shared by a partner) borrows nothing from it.
        "partner_listings": {"o_partner": {"members": [{"member_id": partner_member}], "devices": []}},
    }
    stored["removed"]["o_other"] = {INVITEE: T - 10_000}
    late, early = (T + 301) * 1000, T * 1000
    questions = [
        [INVITEE, INVITEE_DEVICE, late, "reaction"],
        [INVITEE, INVITEE_DEVICE, early, "message"],
        [partner_member, partner_device, late, "message"],
        [partner_member, partner_device, early, "message"],
    ]
    got = offline_verdicts(members, devices, stored, questions)
    assert got["view"] is False
    assert got["refuses"] == [
        "sent after its device was revoked",
        None,
        "sent after its member was removed from the organisation",
        "not a member of this channel",
    ]


def test_both_clients_judge_an_add_by_the_member_s_standing_at_its_date() -> None:
    """Section 14: the invitee, removed from the organisation at T + 300, was added before that
    (and again within the clocks' skew): both replays go on past those adds and stop at one dated
    after; a state kept without ``former`` whose rebuild fails stays without it in both."""
    v, members, devices = org()
    before = TrustView(ORG, ROOT, members, devices)
    log = [v["op0"], v["op1"]]  # the add is dated T + 210
    for seq, op, role, at in ((2, "remove", None, 400), (3, "add", "member", 550), (4, "remove", None, 560)):
        log.append(_entry(seq, statement_hash(log[-1]), op, INVITEE, role, OWNER_DEVICE_SIGN, at=T + at))
    log.append(_entry(5, statement_hash(log[-1]), "add", INVITEE, "member", OWNER_DEVICE_SIGN, at=T + 700))
    kept, _ = membership_log.replay(log, before)
    assert kept is not None and kept.seq == 5
    legacy = {k: val for k, val in kept.to_json().items() if k not in ("former", "authored_until", "joined")}
    members[1]["removal"] = v["removal"]
    after = TrustView(ORG, ROOT, members, devices)
    s = scene(members, devices)
    replayed, rebuilt = run_js(
        {"op": "replay", **s, "entries": log},
        {"op": "advance", **s, "kept": legacy, "answer": {"entries": log, "head": {"seq": 5}}},
    )
    state, error = membership_log.replay(log, after)
    assert state is not None and state.seq == 4 and "cannot be added" in str(error)
    assert replayed["state"] == state.to_json() and "cannot be added" in replayed["error"]
    python_rebuilt, warnings = sync(
        CHANNEL,
        membership_log.LogState.from_json(legacy),
        lambda start: (log[start:], {"seq": 5}),
        after,
        rebuild=True,
    )
    assert rebuilt["state"] == python_rebuilt.to_json() == legacy  # no empty ``former`` kept for good
    assert [w["code"] for w in rebuilt["warnings"]] == [w.code for w in warnings] == ["membership_invalid"]


def test_both_clients_let_only_a_tribe_s_authors_post() -> None:
    """Section 14.2, as the server's rule: in a tribe only authors send anything but reactions
    and votes; what one sent while an author (before being made a member, or leaving) stays
    theirs; in a group everyone posts."""
    v, members, devices = org()
    view = TrustView(ORG, ROOT, members, devices)
    tribe = [_entry(0, None, "create", OWNER, "author", OWNER_DEVICE_SIGN, kind="tribe")]
    for seq, op, role in (
        (1, "add", "member"),
        (2, "role", "author"),
        (3, "role", "member"),  # an author no more from T + 203
        (4, "remove", None),
        (5, "add", "author"),
        (6, "remove", None),  # left as an author
    ):
        tribe.append(_entry(seq, statement_hash(tribe[-1]), op, INVITEE, role, OWNER_DEVICE_SIGN))
    states = [membership_log.replay(tribe[: n + 1], view)[0] for n in range(1, 7)]
    group = membership_log.replay([v["op0"], v["op1"]], view)[0]
    early, late = (T + 200) * 1000, (T + 2000) * 1000  # the clocks' skew is 300 s
    questions = [
        (INVITEE, early, "message"),
        (INVITEE, late, "message"),
        (INVITEE, late, "reaction"),
        (INVITEE, early, "poll"),
        (INVITEE, early, "vote"),
        (OWNER, late, "message"),
    ]
    judged = [st for st in (*states, group) if st]
    assert len(judged) == 7
    (verdicts,) = run_js(
        {
            "op": "refuses_sender",
            "states": [st.to_json() for st in judged],
            "questions": [list(q) for q in questions],
        }
    )
    python = [[st.refuses_sender(m, at, kind) for m, at, kind in questions] for st in judged]
    assert verdicts == python
    no, gone = "not an author of this tribe", "sent after leaving the channel"
    assert python == [
        [no, no, None, no, None, None],  # a member, never an author
        [None] * 6,  # an author
        [None, no, None, None, None, None],  # made a member: their earlier posts stay
        [None, gone, gone, None, None, None],  # then removed
        [None] * 6,  # an author again
        [None, gone, gone, None, None, None],  # left as an author
        [None] * 6,  # a group
    ]
    assert dict(judged[3].authored_until) == {INVITEE: T + 203} and not judged[4].authored_until
    assert membership_log.LogState.from_json(judged[3].to_json()) == judged[3]  # kept across runs


def test_entries_the_web_client_signs_extend_the_log_for_python() -> None:
    v, members, devices = org()
    view = TrustView(ORG, ROOT, members, devices)
    kept = membership_log.replay([v["op0"], v["op1"]], view)[0]
    assert kept is not None
    device = {"org_id": ORG, "device_id": OWNER_DEVICE, "sign_seed": b64e(OWNER_DEVICE_SIGN)}
    made = js(
        "sign_entry",
        device=device,
        channel_id=CHANNEL,
        state=kept.to_json(),
        change={"op": "remove", "memberId": INVITEE},
        now=T + 400,
    )
    after = membership_log.extend(kept, made, view)
    assert after.members == {OWNER: "author"} and after.seq == 2


# -- who gets a sender key, who is shown as the sender --------------------------------------------


def test_no_sender_key_for_an_attackers_device() -> None:
    """Ghost device, swapped key, unsigned addition: the effective roster leaves them out."""
    v, members, devices = org()
    ghost = _ghost(members, devices, v)
    swapped = {**copy.deepcopy(devices[2]), "box_public_key": box_public(bytes([0x79]) * 32)}
    roster = [
        {k: d[k] for k in ("device_id", "member_id", "box_public_key")}
        for d in (devices[0], devices[1], swapped, ghost)
    ]
    state = membership_log.replay([v["op0"], v["op1"]], TrustView(ORG, ROOT, members, devices))[0]
    assert state is not None
    only_owner = {**state.to_json(), "members": {OWNER: "author"}}  # the unsigned addition was refused
    full, without_invitee = run_js(
        {
            "op": "recipients",
            **scene(members, [*devices, ghost]),
            "state": state.to_json(),
            "roster": roster,
            "self": OWNER_DEVICE,
        },
        {
            "op": "recipients",
            **scene(members, [*devices, ghost]),
            "state": only_owner,
            "roster": roster,
            "self": OWNER_DEVICE,
        },
    )
    assert [d["device_id"] for d in full["devices"]] == [INVITEE_DEVICE]
    assert {(w["device_id"], w["code"]) for w in full["warnings"]} == {
        (LINKED, "uncertified_device"),
        (ghost["device_id"], "invalid_statement"),
    }
    assert full["devices"][0]["box_public_key"] == devices[1]["box_public_key"]  # the certified key
    assert without_invitee["devices"] == []
    assert {w["code"] for w in without_invitee["warnings"]} >= {"not_in_membership"}


def test_the_displayed_sender_comes_from_the_device_certificate() -> None:
    v, members, devices = org()
    ghost = _ghost(members, devices, v)
    s = scene(members, [*devices, ghost])
    honest, relabelled, from_ghost = run_js(
        {"op": "sender", **s, "message": {"sender_device": INVITEE_DEVICE, "sender_member": INVITEE}},
        {"op": "sender", **s, "message": {"sender_device": INVITEE_DEVICE, "sender_member": OWNER}},
        {"op": "sender", **s, "message": {"sender_device": ghost["device_id"], "sender_member": INVITEE}},
    )
    assert honest == {
        "member_id": INVITEE,
        "display_name": "Élise Martin",
        "sign_public_key": devices[1]["sign_public_key"],
        "warning": None,
    }
    assert relabelled["member_id"] == INVITEE and relabelled["warning"]["code"] == "forged_sender"
    assert from_ghost["member_id"] is None and from_ghost["warning"]["code"] == "forged_sender"


# -- "@mention me only" (section 17) -------------------------------------------------------------


def test_notify_choices_are_the_same_bytes_and_only_the_member_s_own_count() -> None:
    """The browser signs a member's choice to the bytes the SDK makes (and the server accepts);
    given what a malicious server serves (a forged signature, a ghost device of the member, the
    owner's device signing for the invitee, another channel's choice), the browser names the
    same members in ``notify`` as bocage/client/mentions.py: only those who chose it themselves."""
    from nacl.signing import SigningKey

    from bocage.client.issuing import notify_choice
    from bocage.client.mentions import to_notify
    from chalicelib.domain.statements import NOTIFY

    v, members, devices = org()
    ghost = _ghost(members, devices, v)
    fields = {"org_id": ORG, "channel_id": CHANNEL, "now": T + 500}

    def made(
        seed: bytes, device: str, member: str, mentions_only: bool = True, **over: Any
    ) -> dict[str, Any]:
        args = {**fields, **over}
        return notify_choice(SigningKey(seed), device, member_id=member, mentions_only=mentions_only, **args)

    device = {
        "org_id": ORG,
        "member_id": INVITEE,
        "device_id": INVITEE_DEVICE,
        "sign_seed": b64e(INVITEE_DEVICE_SIGN),
    }
    by_js = js("notify_choice", device=device, channel_id=CHANNEL, mentions_only=True, now=T + 500)
    assert by_js == made(INVITEE_DEVICE_SIGN, INVITEE_DEVICE, INVITEE) and by_js["purpose"] == NOTIFY

    genuine = made(INVITEE_DEVICE_SIGN, INVITEE_DEVICE, INVITEE)
    forged_sig = {**genuine, "sig": made(OWNER_DEVICE_SIGN, INVITEE_DEVICE, INVITEE)["sig"]}
    from_ghost = made(GHOST_SIGN, ghost["device_id"], INVITEE)
    owner_for_invitee = made(OWNER_DEVICE_SIGN, OWNER_DEVICE, INVITEE)
    elsewhere = made(INVITEE_DEVICE_SIGN, INVITEE_DEVICE, INVITEE, channel_id="c_ffffffffffffffff")
    owner_own = made(OWNER_DEVICE_SIGN, OWNER_DEVICE, OWNER)
    owner_later_all = made(OWNER_DEVICE_SIGN, OWNER_DEVICE, OWNER, mentions_only=False, now=T + 600)
    cases = {
        "forged": ([forged_sig, from_ghost, owner_for_invitee, elsewhere, {"purpose": NOTIFY}], []),
        "genuine": ([genuine], [INVITEE]),
        "changed_mind": ([owner_own, owner_later_all, genuine], [INVITEE]),
    }
    s = scene(members, [*devices, ghost])
    mentioned = [OWNER, INVITEE]
    answers = run_js(
        *(
            {"op": "to_notify", **s, "channel_id": CHANNEL, "mentioned": mentioned, "statements": served}
            for served, _ in cases.values()
        )
    )
    view = TrustView(ORG, ROOT, members, [*devices, ghost])
    for (name, (served, expected)), by_browser in zip(cases.items(), answers, strict=True):
        assert to_notify(view, ORG, CHANNEL, mentioned, served) == expected, name
        assert by_browser == expected, name


def test_warnings_about_no_member_or_device_do_not_hide_each_other() -> None:
    """Two tribes' recent-history choices refused, two partnerships' answers refused: each is its
    own warning in both clients' lists; the same warning twice, or two about one device with the
    same code, stay one."""
    warnings = [
        TrustWarning("invalid_history", "c_un: the recent-history choice does not verify"),
        TrustWarning("invalid_history", "c_deux: the recent-history choice does not verify"),
        TrustWarning("invalid_partnership", "p_un: the acceptance does not verify"),
        TrustWarning("invalid_partnership", "p_deux: the acceptance does not verify"),
        TrustWarning("invalid_history", "c_un: the recent-history choice does not verify"),
        TrustWarning("unknown_device", "d_x is not certified", "m_a", "d_x"),
        TrustWarning("unknown_device", "d_x is not certified (again)", "m_a", "d_x"),
    ]
    listed = SimpleNamespace(warnings=[])
    for w in warnings:
        Trust.warn(listed, w)  # type: ignore[arg-type]  # the list alone, as a Trust keeps it
    expected = [w.to_json() for w in warnings[:4]] + [warnings[5].to_json()]
    assert [w.to_json() for w in listed.warnings] == expected
    web = js("kept_warnings", warnings=[w.to_json() for w in warnings])
    assert [(w["code"], w["message"]) for w in web] == [(w["code"], w["message"]) for w in expected[:4]] + [
        ("unknown_device", "d_x is not certified (again)")
    ]  # the web list keeps the latest of one key


# -- 13.7: revocations and removals verified once are kept ------------------------------------


def python_client(
    home: Path,
    members: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    partners: dict[str, Any] | None = None,
    listings: dict[str, Any] | None = None,
) -> tuple[Trust, Any]:
    """The Python client of our owner's device whose profile is ``home`` (its ``trust.json`` kept
    from one call to the next), after a refresh that served our listing and the partners'
    ``listings`` (pinned as ``partners``): the real Trust and its shared view; nothing asks the
    server (the listings are the files a refresh writes)."""
    profile = Profile(home)
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    profile.save_info({"server": "http://in-process.invalid", "org_id": ORG, "member_id": OWNER})
    state = profile.trust()
    state.root, state.partners = ROOT, copy.deepcopy(partners or {})
    profile.save_trust(state)
    (home / "members.json").write_text(json.dumps({"members": members, "devices": devices}))
    (home / "partner_members.json").write_text(json.dumps(listings or {}))
    trust = Trust(profile, cast(Any, None), keys, lambda: T + 100)
    return trust, trust.view()


def kept_by_org(kept: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A client's ``org -> id -> value`` record without the organisations it holds nothing for."""
    return {org: ids for org, ids in kept.items() if ids}


def keeper_view(stored: dict[str, Any], members: list[dict[str, Any]], devices: list[dict[str, Any]]) -> Any:
    """The web app's TrustKeeper over ``stored`` (its IndexedDB record) and our listing."""
    s = {**scene(members, devices), "member_id": OWNER, "device_id": OWNER_DEVICE, "stored": stored}
    return js("keeper_view", **s)


def rollbacks(warnings: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (w["member_id"], w["device_id"], w["message"]) for w in warnings if w["code"] == "revocation_rollback"
    }


def test_a_revocation_or_removal_verified_once_stays_when_the_server_drops_it(tmp_path: Path) -> None:
    """Both clients keep the invitee's linked device's revocation and the invitee's removal they
    verified (13.7): the same listing served again without them, or with the revocation dated
    later, leaves the device and the member out from the kept dates, in the same verdicts, and
    both report the same revocation_rollback warnings. A device that never saw them (a new one)
    takes the listing as it is."""
    v, members, devices = org()
    ended_m, ended_d = copy.deepcopy(members), copy.deepcopy(devices)
    ended_m[1]["removal"], ended_d[2]["revocation"] = v["removal"], v["revoc"]
    first = keeper_view({}, ended_m, ended_d)
    trust, _ = python_client(tmp_path, ended_m, ended_d)
    kept = {"revoked": {ORG: {LINKED: T + 240}}, "removed": {ORG: {INVITEE: T + 300}}}
    for record in (first["stored"], {"revoked": trust.state.revoked, "removed": trust.state.removed}):
        assert {k: kept_by_org(record[k]) for k in kept} == kept
    assert rollbacks(first["warnings"]) == rollbacks(trust.take_warnings()) == set()

    later_d = copy.deepcopy(devices)
    later_d[2]["revocation"] = sign_statement({**body(v["revoc"]), "issued_at": T + 260}, INVITEE_DEVICE_SIGN)
    for served in (devices, later_d):
        got = keeper_view(first["stored"], members, served)
        trust, view = python_client(tmp_path, members, served)
        for did, verdict in got["devices"].items():
            assert (verdict["usable"], verdict["revoked_at"]) == (
                view.usable(did) is not None,
                view.revoked_at(did),
            ), did
        assert got["devices"][LINKED] == {**got["devices"][LINKED], "usable": False, "revoked_at": T + 240}
        assert got["devices"][INVITEE_DEVICE]["usable"] is False  # the invitee stays removed
        assert got["members"][INVITEE]["removed_at"] == view.removed_at(INVITEE) == T + 300
        web = rollbacks(got["warnings"])
        assert web == rollbacks(trust.take_warnings())
        assert {(m, d) for m, d, _ in web} == {(INVITEE, LINKED), (INVITEE, None)}
        assert {k: kept_by_org(got["stored"][k]) for k in kept} == kept  # never moved later
    fresh = keeper_view({}, members, devices)
    assert fresh["devices"][LINKED]["usable"] is True and fresh["devices"][INVITEE_DEVICE]["usable"] is True
    assert rollbacks(fresh["warnings"]) == set()


def test_a_cached_message_nothing_else_can_judge_is_refused_by_a_kept_revocation() -> None:
    """A record in the web app's cache, signed after its device's revocation this device kept
    (13.7), is refused even when nothing else can judge it now: no log kept for its channel, or a
    listing that no longer names the device and cannot be asked again (a server hiding it). One
    signed before stays as it was."""
    v, members, devices = org()
    state = membership_log.replay([v["op0"], v["op1"]], TrustView(ORG, ROOT, members, devices))[0]
    assert state is not None
    late, early = (T + 3600) * 1000, (T - 60) * 1000

    def record(channel: str, sent_at_ms: int) -> dict[str, Any]:
        return {
            "channel_id": channel,
            "seq": 5,
            "kind": "message",
            "sender_member": INVITEE,
            "sender_device": INVITEE_DEVICE,
            "sent_at_ms": sent_at_ms,
            "verified": True,
            "content": {"type": "text", "text": "volé"},
        }

    stored = {"revoked": {ORG: {INVITEE_DEVICE: T}}, "removed": {}, "logs": {CHANNEL: state.to_json()}}
    refused = {
        "verified": False,
        "error": "not_a_member",
        "detail": "sent after its device was revoked",
        "held": {"type": "text", "text": "volé"},
    }
    for lost_device, channel in ((False, "c_unkeptunkeptunk"), (True, CHANNEL)):
        (got,) = run_js(
            {
                "op": "cached_judged",
                **scene(members, devices),
                "member_id": OWNER,
                "device_id": OWNER_DEVICE,
                "stored": stored,
                "lost_device": lost_device,
                "records": [record(channel, late), record(channel, early)],
            }
        )
        assert got == [refused, "unchanged"], lost_device


def test_an_offline_web_app_cuts_at_the_partnership_ends_it_kept() -> None:
    """Before its listing is verified (an offline start), the web app cuts a channel at the ends
    it kept (22.7), as its last online view did: the ended partner's member, named by the kept
    listing, sends nothing dated after the end; what they sent before stays theirs; our own
    member is never cut."""
    partner_member, partner_device = "m_pppppppppppppppp", "d_pppppppppppppppp"
    state = {
        "channel_id": CHANNEL,
        "kind": "group",
        "members": {OWNER: "author", partner_member: "member", INVITEE: "member"},
        "seq": 2,
        "head": "h",
        "org_id": ORG,
        "former": {},
        "authored_until": {},
        "created_at": T - 2000,
        "issued_at": T - 1000,
        "joined": {OWNER: T - 2000, partner_member: T - 1000, INVITEE: T - 1000},
    }
    stored = {
        "revoked": {},
        "removed": {},
        "logs": {CHANNEL: state},
        "partners": {
            "o_partner": {"root": "r", "ticket_key": "k", "ended": True, "active": False, "ends": {"k": T}}
        },
        "partner_listings": {"o_partner": {"members": [{"member_id": partner_member}], "devices": []}},
    }
    late, early = (T + 3600) * 1000, (T - 60) * 1000
    questions = [
        [partner_member, partner_device, late, "message"],
        [partner_member, partner_device, early, "message"],
        [INVITEE, INVITEE_DEVICE, late, "message"],
    ]
    _, members, devices = org()
    got = offline_verdicts(members, devices, stored, questions)
    assert got["view"] is False
    assert got["refuses"][1:] == [None, None]
    assert got["refuses"][0] is not None and "after leaving" in got["refuses"][0]


def test_a_retry_does_not_undo_a_deletion_that_landed_while_it_waited() -> None:
    """The web app retries a message it could not read (no key yet) and, while it waits on the
    network, the message is deleted for everyone: the retry writes over the record only as it
    read it, so the deletion stands and the text is not put back on the device."""
    record = {
        "channel_id": CHANNEL,
        "seq": 7,
        "message_id": "m" * 22,
        "kind": "message",
        "verified": False,
        "error": "no_key",
        "raw": {"channel_id": CHANNEL, "seq": 7, "message_id": "m" * 22, "kind": "message"},
    }
    (stored,) = run_js({"op": "retry_during_deletion", "record": record})
    assert stored["deleted"] is True and stored["content"] is None and stored["raw"] is None
