"""More devices for a member, written straight to the store: many connections for a benchmark.

A device keeps ``BOCAGE_WS_PER_DEVICE`` connections (5): a sixth closes its oldest. Benchmarks
that hold thousands of connections (bench/fanout.py, bench/load.py --idle) spread them over
devices cloned from one real device (same organisation and member, fresh keys), written to
the store the server reads. Raising the cap instead would make every ``$connect`` read all of
one device's connections: a quadratic start-up that measures the cap, not the socket layer.
Each clone connects as any device does: a token signed with its own key, checked at ``$connect``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bocage.client.profile import DeviceKeys
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.domain.encoding import b64e
from chalicelib.ports import Store

PER_DEVICE = 5  # chalicelib/settings.py's default ws_per_device


@dataclass(frozen=True)
class Clone:
    device_id: str
    signing_seed: str  # base64url of the Ed25519 seed


def clone_devices(store: Store, device_id: str, connections: int) -> list[Clone]:
    """Enough clones of ``device_id`` for ``connections`` connections, PER_DEVICE each."""
    records = MemberRecords(store)
    original = records.device(device_id)
    if original is None:
        raise ValueError(f"no device {device_id}")
    clones = []
    for i in range(-(-connections // PER_DEVICE)):
        keys = DeviceKeys.generate()
        records.save_device(
            original.model_copy(
                update={
                    "device_id": keys.device_id,
                    "name": f"bench clone {i}",
                    "sign_public_key": keys.sign_public_key,
                    "box_public_key": keys.box_public_key,
                    "created_at": int(time.time()),
                }
            )
        )
        clones.append(Clone(keys.device_id, b64e(bytes(keys.signing))))
    return clones
