"""The single-table key layout, in one place (see DESIGN, section 3).

Partition ``ORG#o`` holds the organisation (``META``), its members
(``MEMBER#m``) and, right after each member, copies of their devices
(``MEMBER#m#DEVICE#d``), so one query lists members with their public keys.
"""

from __future__ import annotations

Key = tuple[str, str]

META = "META"
ORGS_PK = "ORGS"  # registry of organisations, for operators and monthly jobs
MEMBER_PREFIX = "MEMBER#"
DEVICE_INFIX = "#DEVICE#"


def org(org_id: str) -> Key:
    return f"ORG#{org_id}", META


def org_registry(org_id: str) -> Key:
    return ORGS_PK, f"ORG#{org_id}"


def member(org_id: str, member_id: str) -> Key:
    return f"ORG#{org_id}", f"{MEMBER_PREFIX}{member_id}"


def member_device(org_id: str, member_id: str, device_id: str) -> Key:
    return f"ORG#{org_id}", f"{MEMBER_PREFIX}{member_id}{DEVICE_INFIX}{device_id}"


def device(device_id: str) -> Key:
    return f"DEVICE#{device_id}", META


def invitation(code_hash: str) -> Key:
    return f"INVITE#{code_hash}", META


def nonce(subject: str, nonce_value: str) -> Key:
    return f"NONCE#{subject}", nonce_value


def is_device_sk(sk: str) -> bool:
    return DEVICE_INFIX in sk


def record(key: Key, fields: dict[str, object]) -> dict[str, object]:
    """A store item: the key plus the model's fields (``model_dump(mode="json")``)."""
    pk, sk = key
    return {"pk": pk, "sk": sk, **{k: v for k, v in fields.items() if v is not None}}
