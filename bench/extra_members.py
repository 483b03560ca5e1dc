"""More members, written straight to the store: many connections for a benchmark.

A device keeps ``BOCAGE_WS_PER_DEVICE`` connections (5): a sixth closes its oldest, and finding
them reads all of its member's connections. Benchmarks that hold thousands of connections
(bench/fanout.py, bench/load.py --idle) spread them over members cloned from one real member
(same organisation, role and channels; one device each, with fresh keys), five connections
each, as a town's members would hold them. One member holding them all would make every
``$connect`` read thousands of presence items: a quadratic start-up that measures the cap, not
the socket layer. Each clone connects as any device does: a token signed with its own key,
checked at ``$connect``, presence written for its channels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.encoding import b64e
from chalicelib.domain.ids import new_id
from chalicelib.ports import Store

PER_DEVICE = 5  # chalicelib/settings.py's default ws_per_device


@dataclass(frozen=True)
class Clone:
    device_id: str
    signing_seed: str  # base64url of the Ed25519 seed


def clone_members(store: Store, device_id: str, connections: int) -> list[Clone]:
    """Enough clones of ``device_id``'s member for ``connections`` connections, PER_DEVICE each."""
    members, channels = MemberRecords(store), ChannelRecords(store)
    device = members.device(device_id)
    member = None if device is None else members.get(device.org_id, device.member_id)
    if device is None or member is None:
        raise ValueError(f"no device {device_id}, or no member of it")
    memberships = list(channels.memberships_of(member.member_id))
    clones = []
    for i in range(-(-connections // PER_DEVICE)):
        keys, member_id = DeviceKeys.generate(), new_id("m")
        members.save(member.model_copy(update={"member_id": member_id, "display_name": f"Clone {i}"}))
        for membership in memberships:
            channels.save_membership(membership.model_copy(update={"member_id": member_id}))
        members.save_device(
            device.model_copy(
                update={
                    "device_id": keys.device_id,
                    "member_id": member_id,
                    "name": f"bench clone {i}",
                    "sign_public_key": keys.sign_public_key,
                    "box_public_key": keys.box_public_key,
                    "created_at": int(time.time()),
                }
            )
        )
        clones.append(Clone(keys.device_id, b64e(bytes(keys.signing))))
    for membership in memberships:  # as a join does: copies of the channels' members are re-read
        channels.bump_roster(membership.channel_id)
    return clones
