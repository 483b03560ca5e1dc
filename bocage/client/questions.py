"""Questions to the town hall (docs/protocol.md, section 20), sealed and opened on the devices.

A question is sealed by the follower's device, one NaCl box per recipient device (the tribe's
managers', as this device verifies them, and its own copy); an answer by a manager's device, one
box to the asker's device. Each box repeats what it is bound to (purpose, tribe, question id,
both device ids), so the server cannot move a box to another question, tribe or device; the box
authenticates the sender's certified box key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
from nacl.public import Box, PublicKey

from bocage.client.certs import ADMIN_ROLES, FOREVER, TrustView
from bocage.client.crypto import CryptoError
from bocage.client.profile import DeviceKeys
from chalicelib.domain.encoding import b64d, b64e
from chalicelib.domain.membership_log import LogState
from chalicelib.domain.questions import ANSWER_PURPOSE, MAX_TEXT
from chalicelib.domain.x25519 import check_box_public_key


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_text(text: str) -> str:
    cleaned = text.strip()
    if not 1 <= len(cleaned) <= MAX_TEXT:
        raise ValueError(f"a question or an answer is 1 to {MAX_TEXT} characters")
    return cleaned


def seal(
    sender: DeviceKeys,
    recipient_device: str,
    recipient_box_public_key: str,
    *,
    purpose: str,
    channel_id: str,
    question_id: str,
    text: str,
    published_message_id: str | None = None,
) -> str:
    """One box: the text and what it is bound to, from this device to one recipient device."""
    payload: dict[str, Any] = {
        "purpose": purpose,
        "channel_id": channel_id,
        "question_id": question_id,
        "sender_device": sender.device_id,
        "recipient_device": recipient_device,
        "text": text,
    }
    if purpose == ANSWER_PURPOSE:
        payload["published_message_id"] = published_message_id
    box = Box(sender.box, PublicKey(check_box_public_key(recipient_box_public_key)))
    return b64e(bytes(box.encrypt(_canonical(payload))))


def open_box(
    recipient: DeviceKeys,
    sealed: str,
    sender_device: str,
    sender_box_public_key: str,
    *,
    purpose: str,
    channel_id: str,
    question_id: str,
) -> dict[str, Any]:
    """The payload of a box sealed to this device, every bound field checked; CryptoError if not."""
    try:
        box = Box(recipient.box, PublicKey(check_box_public_key(sender_box_public_key)))
        payload = json.loads(box.decrypt(b64d(sealed)).decode("utf-8"))
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise CryptoError("the sealed box does not open") from exc
    expected = {
        "purpose": purpose,
        "channel_id": channel_id,
        "question_id": question_id,
        "sender_device": sender_device,
        "recipient_device": recipient.device_id,
    }
    if not isinstance(payload, dict) or any(payload.get(k) != v for k, v in expected.items()):
        raise CryptoError("the sealed box is bound to another question, tribe or device")
    if not isinstance(payload.get("text"), str) or len(payload["text"]) > MAX_TEXT:
        raise CryptoError("malformed sealed box")
    return payload


def managers_devices(view: TrustView, state: LogState) -> dict[str, str]:
    """Device id -> certified box key of every usable device, in this device's verified view,
    of a member who is now an admin or owner of the organisation or an author of the tribe in
    its verified log: those a question is sealed to, never on the server's word."""
    found: dict[str, str] = {}
    for device_id in view.device_ids():
        usable = view.usable(device_id)
        if usable is None:
            continue
        role = view.org_role(usable.member_id, FOREVER - 1)
        if role in ADMIN_ROLES or state.members.get(usable.member_id) == "author":
            found[usable.device_id] = usable.box_public_key
    return found


def is_manager(view: TrustView, state: LogState, device_id: str, member_id: str) -> bool:
    """Whether an answer's device is a manager's, as this device verifies it."""
    usable = view.usable(device_id)
    if usable is None or usable.member_id != member_id:
        return False
    return view.org_role(member_id, FOREVER - 1) in ADMIN_ROLES or state.members.get(member_id) == "author"
