"""Edits (docs/protocol.md, section 7): the latest verified ``edit`` by a text message's own
sender replaces its text on every device; an edit by anyone else is ignored and flagged, since
the server, or another member, could otherwise put words in someone's mouth."""

from __future__ import annotations

from typing import Any

IGNORED = "an edit by someone other than the message's sender (or malformed): ignored"


def apply_edits(opened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The opened messages with each text replaced by its sender's latest edit (``edited``), and
    edits by others flagged. Edits whose message is not among ``opened`` are left as they are."""
    originals = {m["message_id"]: m for m in opened if m.get("verified") and m["kind"] == "message"}
    latest: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    for message in opened:
        if message["kind"] != "edit" or not message.get("verified"):
            continue
        original = originals.get(message["content"]["target"])
        if original is None:
            continue
        foreign = original["sender_member"] != message["sender_member"]
        if (
            foreign
            or message["seq"] <= original["seq"]
            or not isinstance(message["content"].get("text"), str)
        ):
            refused.add(message["message_id"])
        elif message["seq"] > latest.get(original["message_id"], {"seq": -1})["seq"]:
            latest[original["message_id"]] = message
    result = []
    for message in opened:
        edit = latest.get(message["message_id"]) if message["kind"] == "message" else None
        if edit is not None:
            text = edit["content"]["text"]
            message = {**message, "text": text, "content": {**message["content"], "text": text}}
            message["edited"], message["edited_seq"] = True, edit["seq"]
        elif message["message_id"] in refused:
            message = {**message, "ignored": True, "error": IGNORED}
        result.append(message)
    return result
