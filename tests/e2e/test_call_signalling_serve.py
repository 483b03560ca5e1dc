"""Call signalling under `bocage serve` (in-process push, real sockets on loopback): the owner
rings Alice, she accepts, offer, answer and candidates travel sealed between the two devices'
live connections, the hang-up reaches her; the store and the log keep none of it."""

from __future__ import annotations

from pathlib import Path

from bocage.client.messenger import Messenger
from bocage.client.profile import Profile
from tests.e2e.conftest import bocage, start_server
from tests.e2e.test_call_relay import owner_of

SDP = "v=0\r\no=- 1 2 IN IP4 192.0.2.44\r\na=ice-pwd:mediaSecretPassword0123"
CANDIDATE = "candidate:1 1 udp 2122260223 192.0.2.44 51000 typ host"


def test_a_call_is_signalled_over_real_sockets_and_nothing_of_it_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = bocage("org", "create", "Mairie de Plouha", "--plan", "pro", "--data", str(data))
    server = start_server(data, tmp_path / "serve.log")
    try:
        owner_profile = owner_of(created, server, tmp_path / "owner")
        url = bocage("--profile", owner_profile, "invite", "--name", "Alice")["activation_url"]
        alice_id = bocage("--profile", str(tmp_path / "alice"), "activate", url, "--name", "Alice")[
            "member_id"
        ]
        group = bocage("--profile", owner_profile, "group", "create", "Visite")["channel_id"]
        bocage("--profile", owner_profile, "channel", "add", group, alice_id)
        owner, alice = Messenger(Profile(Path(owner_profile))), Messenger(Profile(tmp_path / "alice"))
        with owner.live(), alice.live():
            call_id, ack = owner.calls.ring(group)
            assert ack.participants == [owner.device_id] and ack.delivered == 1
            (ring,) = alice.calls.signals(timeout=5)
            assert (ring.signal, ring.from_device, ring.call_id) == ("ring", owner.device_id, call_id)
            assert alice.calls.signal(group, call_id, "accept", [owner.device_id]).participants == sorted(
                [owner.device_id, alice.device_id]
            )
            owner.calls.signal(group, call_id, "offer", {alice.device_id: {"type": "offer", "sdp": SDP}})
            alice.calls.signal(group, call_id, "answer", {owner.device_id: {"type": "answer", "sdp": SDP}})
            alice.calls.signal(group, call_id, "candidate", {owner.device_id: {"candidate": CANDIDATE}})
            heard = list(owner.calls.signals(timeout=3))
            assert [s.signal for s in heard] == ["accept", "answer", "candidate"]
            assert heard[2].data == {"candidate": CANDIDATE}
            owner.send_text(group, "Je vous rappelle après la visite", live=True)
            offer = next(s for s in alice.calls.signals(timeout=3) if s.signal == "offer")
            assert offer.data == {"type": "offer", "sdp": SDP}
            assert owner.calls.signal(group, call_id, "hangup", [alice.device_id]).ended
            assert [s.signal for s in alice.calls.signals(timeout=3)] == ["hangup"]
            # The message that came during the call was kept for the reader of messages.
            (message,) = [alice.handle(f) for f in alice._live_session().frames(timeout=1)]
            assert message is not None and message["text"] == "Je vous rappelle après la visite"
        stored = str(server.stored_items())
        logged = server.output()
        assert call_id in stored  # the call's record: ids and times
        for secret in ("192.0.2.44", "mediaSecretPassword", "candidate:1"):
            assert secret not in stored and secret not in logged
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
