"""Attack (review): a call signal from a REVOKED device (a stolen phone the admin revoked) is still
acted on by the Python SDK (docs/protocol.md, 19.4: "a device its trust view certifies"; a revoked
device certifies nothing any more). ``Calls.open`` asks ``Trust.sender``, which uses
``TrustView.device`` (revoked or not), not ``usable``; the web client's ``verifySignal`` asks the
effective roster and refuses it. The thief holds the device's keys; a server that keeps relaying
for it (the threat model of section 12) rings members and sends them offers in the member's name."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.calls import UntrustedSignal, new_call_id
from bocage.client.crypto import seal_call_signal
from chalicelib.domain.frames import CallFrame
from tests.integration.test_malicious_server_calls import group  # noqa: F401  (the fixture)
from tests.support import SignedApi


def test_a_signal_sealed_by_a_revoked_device_is_refused(group: Any, api: SignedApi) -> None:  # noqa: F811
    people, bob, cid = group
    people.join("carol")
    carol_id = people.info["carol"]["member_id"]
    people.owner.add_member(cid, carol_id)
    stolen = people.keys["carol"]
    assert api.revoke(people.keys["owner"], stolen.device_id).status == 200  # the admin signed it
    assert bob.trust.view(refresh=True).usable(stolen.device_id) is None  # Bob sees the revocation
    call_id = new_call_id()
    for signal, data in (
        ("ring", {"at": people.owner.trust.now()}),
        ("offer", {"type": "offer", "sdp": "v=0"}),
    ):
        sealed = seal_call_signal(stolen, bob.device_id, bob.keys.box_public_key, cid, call_id, signal, data)
        relayed = CallFrame(
            channel_id=cid,
            call_id=call_id,
            signal=signal,
            from_device=stolen.device_id,
            from_member=carol_id,
            sealed=sealed,
            at=1,
        )
        with pytest.raises(UntrustedSignal):
            opened = bob.calls.open(relayed)
            print(f"{signal} from the revoked device accepted: {opened}")
