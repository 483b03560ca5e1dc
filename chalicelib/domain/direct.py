"""Direct conversations: one channel per pair of members of an organisation.

Its id is derived from the pair (docs/protocol.md, section 14.1), so two members who open it at
the same moment name the same channel and the store's conditional write keeps one; and a client
can check from the id alone who the two members are, so a server cannot slip a third one in.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable

from chalicelib.domain.ids import b32_id

PURPOSE = "bocage/direct/v2"
CHANNEL_PURPOSE = "bocage/channel/v2"


def channel_id_from_seed(seed: str) -> str:
    """Any other channel's id: made from a random seed its creator sends with it, so that nobody
    can create a group under a pair's direct id (that would take an 80-bit preimage)."""
    return b32_id("c", hashlib.sha256(f"{CHANNEL_PURPOSE}\n{seed}".encode()).digest())


def new_channel_seed() -> str:
    """128 random bits, base32-lower (26 characters)."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def direct_channel_id(org_id: str, member_a: str, member_b: str) -> str:
    """``c_`` + base32 of the first 80 bits of SHA-256 over the purpose, the org and the sorted pair."""
    first, second = sorted((member_a, member_b))
    digest = hashlib.sha256(f"{PURPOSE}\n{org_id}\n{first}\n{second}".encode()).digest()
    return b32_id("c", digest)


def is_direct_of(
    channel_id: str, org_id: str, kind: str, members: Iterable[str], me: str, other: str
) -> bool:
    """Whether a verified log state (its ``kind`` and members) is our direct conversation with
    ``other``: the pair's id alone could be a group someone else made under it (14.1)."""
    return is_direct_pair(channel_id, org_id, me, other) and kind == "direct" and set(members) == {me, other}


def is_direct_pair(channel_id: str, org_id: str, member_a: str, member_b: str) -> bool:
    """Whether ``channel_id`` is the direct conversation of these two (distinct) members."""
    return member_a != member_b and channel_id == direct_channel_id(org_id, member_a, member_b)
