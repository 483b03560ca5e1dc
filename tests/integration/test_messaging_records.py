"""The messaging records on both store adapters: what is written is what readers get back."""

from __future__ import annotations

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.expiring import Expiring, ExpiringItems
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.adapters.records.presence import Connection, Presence
from chalicelib.adapters.records.retention_jobs import RetentionJobs
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.adapters.store_items import item_size
from chalicelib.domain.channel import ChannelMember, ChannelRole
from chalicelib.domain.encoding import b64e
from chalicelib.domain.envelope import Kind
from chalicelib.domain.frames import MessageFrame, StoredMessage, frame_bytes
from chalicelib.domain.roster import SealedKey
from chalicelib.ports import Store
from tests.support import device_model

CID = "c_records"
NOW = ManualClock().now()  # what the app_store's clock says: items expire after it


def _message(seq: int, *, message_id: str | None = None, stored_at: int = NOW) -> StoredMessage:
    return StoredMessage(
        v=2,
        channel_id=CID,
        message_id=message_id or f"msg-{seq:08d}",
        sender_device="d_sender",
        epoch=2,
        index=seq - 1,
        kind=Kind.MESSAGE,
        sent_at=1_700_000_000_000,
        nonce="bm9uY2U",
        ciphertext="Y2lwaGVy",
        signature="c2lnbg",
        seq=seq,
        sender_member="m_sender",
        stored_at=stored_at,
        expires_at=stored_at + 86400,
    )


def test_a_stored_message_reads_back_byte_for_byte_with_its_null_target(app_store: Store) -> None:
    messages = MessageRecords(app_store)
    sent = _message(1)
    messages.add(sent)
    page = messages.after(CID, 0, 10)
    assert page.messages == [sent] and not page.more
    (read,) = page.messages
    assert read.wire()["target"] is None  # the signature covers it: it must stay on the wire
    assert frame_bytes(MessageFrame(message=read)) == frame_bytes(MessageFrame(message=sent))
    assert messages.find(CID, sent.message_id) == sent


def test_a_message_is_stored_with_short_names_and_its_ciphertext_as_bytes(app_store: Store) -> None:
    """The stored item is the bill (write units, read units, GB-months): its key is not repeated
    inside it, names are short and base64url fields are their bytes, a third smaller."""
    messages = MessageRecords(app_store)
    sent = _message(1).model_copy(update={"ciphertext": b64e(bytes(range(256)) * 4)})
    messages.add(sent)
    item = app_store.get(*keys.message(CID, 1))
    assert item is not None
    assert item["c"] == bytes(range(256)) * 4 and item["n"] == b"nonce" and item["g"] == b"sign"
    assert {"channel_id", "seq", "ciphertext", "message_id"}.isdisjoint(item)
    old_layout = keys.record(keys.message(CID, 1), {}) | sent.wire()
    assert item_size(item) < item_size(old_layout) - 400  # 1,368 base64 characters became 1,024 bytes
    assert messages.after(CID, 0, 10).messages == [sent] and messages.get(CID, 1) == sent


def test_messages_stored_the_old_way_read_back_as_they_were(app_store: Store, clock: ManualClock) -> None:
    """Items written before the short layout (long names, base64 text, the channel and number
    repeated) need no migration: they read, page, find and expire beside the new ones."""
    messages, expiring = MessageRecords(app_store), ExpiringItems(app_store)
    old = _message(1, message_id="old-one")
    app_store.put(keys.record(keys.message(CID, 1), {}) | old.wire())
    app_store.put(
        keys.record(
            keys.message_marker(CID, "old-one"),
            {"state": "stored", "attempt": "a0", "seq": 1, "stored_at": NOW, "expires_at": old.expires_at},
        )
    )
    new = _message(2)
    messages.add(new)
    assert messages.after(CID, 0, 10).messages == [old, new]
    assert messages.find(CID, "old-one") == old and messages.get(CID, 1) == old
    (first, second), _ = expiring.page(CID, Expiring.MESSAGE, None, 10)
    assert [(x.seq, x.epoch, x.sender_device, x.stored_at) for x in (first, second)] == [
        (1, 2, "d_sender", NOW),
        (2, 2, "d_sender", NOW),
    ]
    expiring.apply([(first, NOW + 5000), (second, NOW + 6000)], [])
    assert [m.expires_at for m in messages.after(CID, 0, 10).messages] == [NOW + 5000, NOW + 6000]


def test_base64_that_would_not_come_back_the_same_is_stored_as_text(app_store: Store) -> None:
    """The signature covers the text the sender sent: padded base64url stays as it was."""
    messages = MessageRecords(app_store)
    padded = _message(1).model_copy(update={"nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"})
    messages.add(padded)
    item = app_store.get(*keys.message(CID, 1))
    assert item is not None and item["n"] == "bm9uY2U=" and item["c"] == b"cipher"
    assert messages.get(CID, 1) == padded


def test_a_message_id_is_marked_once_in_one_write_and_found_only_once_stored(app_store: Store) -> None:
    messages = MessageRecords(app_store)
    first = _message(7, message_id="resent-001")
    assert messages.mark(first, attempt="a1")
    assert not messages.mark(_message(8, message_id="resent-001"), attempt="a2")  # a resend
    marked = messages.marker(CID, "resent-001")
    assert marked is not None and marked.seq == 7 and marked.expires_at == NOW + 86400
    assert messages.find(CID, "resent-001") is None  # marked, not stored yet
    messages.store(first)
    assert messages.find(CID, "resent-001") == first


def test_an_abandoned_marker_is_taken_over_only_while_it_still_names_its_number(app_store: Store) -> None:
    messages = MessageRecords(app_store)
    assert messages.mark(_message(3, message_id="crashed-01"), attempt="a1")
    assert messages.mark(_message(9, message_id="crashed-01"), attempt="a2", replacing=3)
    assert not messages.mark(_message(10, message_id="crashed-01"), attempt="a3", replacing=3)
    marked = messages.marker(CID, "crashed-01")
    assert marked is not None and marked.seq == 9


def test_a_marker_of_the_older_two_step_shape_is_still_read(app_store: Store, clock: ManualClock) -> None:
    """A pilot's store holds markers written before the one-write marker: ``pending`` ones
    (a send at work, 60 s) read as in flight, then as absent; ``stored`` ones as before."""
    key = {"pk": f"CHAN#{CID}", "sk": "MID#old-pending"}
    app_store.put(key | {"state": "pending", "attempt": "x", "expires_at": NOW + 60})
    app_store.put(
        {
            "pk": f"CHAN#{CID}",
            "sk": "MID#old-stored",
            "state": "stored",
            "attempt": "y",
            "seq": 4,
            "stored_at": NOW - 5,
            "expires_at": NOW + 86400,
        }
    )
    messages = MessageRecords(app_store)
    pending = messages.marker(CID, "old-pending")
    assert pending is not None and not pending.stored
    stored = messages.marker(CID, "old-stored")
    assert stored is not None and (stored.seq, stored.stored_at) == (4, NOW - 5)
    clock.advance(61)
    assert messages.marker(CID, "old-pending") is None
    assert messages.mark(_message(5, message_id="old-pending"), attempt="z")


def test_a_message_deleted_for_everyone_keeps_its_place_without_its_body(app_store: Store) -> None:
    messages = MessageRecords(app_store)
    messages.add(_message(1))
    bodiless = {"nonce": None, "ciphertext": None, "signature": None, "deleted": True, "deleted_at": 5}
    messages.store(_message(1).model_copy(update={**bodiless, "deleted_by": "m_admin"}))
    (read,) = messages.after(CID, 0, 10).messages
    wire = read.wire()
    assert {"nonce", "ciphertext", "signature"}.isdisjoint(wire)
    assert (wire["deleted"], wire["deleted_by"], wire["seq"]) == (True, "m_admin", 1)


def test_reading_after_a_cursor_pages_in_sequence_order(app_store: Store) -> None:
    messages = MessageRecords(app_store)
    for seq in (3, 1, 2, 4):
        messages.add(_message(seq))
    first = messages.after(CID, 1, 2)
    assert [m.seq for m in first.messages] == [2, 3] and first.more
    assert [m.seq for m in messages.after(CID, 3, 2).messages] == [4]


def test_read_cursors_are_per_device_and_channel(app_store: Store) -> None:
    messages = MessageRecords(app_store)
    messages.save_cursor("d_1", "c_a", 4, at=10)
    messages.save_cursor("d_1", "c_b", 9, at=10)
    messages.save_cursor("d_2", "c_a", 1, at=10)
    assert messages.cursors("d_1") == {"c_a": 4, "c_b": 9}


def test_membership_is_listed_both_ways_and_leaving_takes_the_devices(app_store: Store) -> None:
    channels = ChannelRecords(app_store)
    for member_id in ("m_a", "m_b"):
        membership = ChannelMember(
            channel_id=CID, member_id=member_id, role=ChannelRole.MEMBER, added_at=1, added_by="m_a"
        )
        channels.save_membership(membership)
        channels.add_devices(CID, [device_model(f"d_{member_id}", member_id)])
    assert [m.member_id for m in channels.members(CID)] == ["m_a", "m_b"]
    assert channels.channel_ids_of("m_b") == [CID]
    channels.remove_membership(CID, "m_b", ["d_m_b"])
    assert channels.membership(CID, "m_b") is None and channels.channel_ids_of("m_b") == []
    assert [d.device_id for d in channels.roster(CID)] == ["d_m_a"]


def test_the_epoch_moves_on_from_the_latest_and_the_floor_never_goes_down(app_store: Store) -> None:
    channels = ChannelRecords(app_store)
    assert channels.advance_epoch(CID, 100) == 1
    assert channels.advance_epoch(CID, 200) == 2
    epoch = channels.epoch(CID)
    assert (epoch.number, epoch.started_at) == (2, 200)
    channels.raise_floor(CID, 30)
    channels.raise_floor(CID, 10)
    assert channels.floor(CID) == 30
    assert [channels.next_seq(CID).seq, channels.next_seq(CID).seq] == [1, 2]
    assert channels.counters(CID).seq == 2


def test_numbering_a_message_returns_the_roster_version_as_that_write_left_it(app_store: Store) -> None:
    """A send's fan-out takes the roster version from the write that numbers its message (no
    read of its own): that write must return the counters it did not move, a change under way
    included (services/roster_cache.py)."""
    channels = ChannelRecords(app_store)
    channels.bump_roster(CID)
    channels.bump_roster(CID)
    numbered = channels.next_seq(CID, "2027-03")
    assert (numbered.seq, numbered.roster, numbered.roster_busy) == (1, 2, 0)

    def midway() -> None:
        during = channels.next_seq(CID)
        assert (during.seq, during.roster, during.roster_busy) == (2, 3, 1)

    assert channels.change_roster(CID, midway) == 4
    assert channels.next_seq(CID) == channels.counters(CID)


def test_presence_is_found_by_channel_and_member_and_forgotten_everywhere(app_store: Store) -> None:
    presence = Presence(app_store)
    connection = Connection(
        connection_id="k1", member_id="m_a", device_id="d_a", expires_at=10**10, org_id="o_1", connected_at=1
    )
    presence.connect(connection, [CID])
    assert presence.get("k1") == connection
    assert [t.connection_id for t in presence.targets_in_channel(CID)] == ["k1"]
    assert [c.device_id for c in presence.of_member("m_a")] == ["d_a"]
    presence.forget(connection, [CID])
    assert presence.get("k1") is None
    assert list(presence.targets_in_channel(CID)) == [] and list(presence.of_member("m_a")) == []


def test_a_device_gets_the_keys_sealed_to_it_for_one_epoch(app_store: Store) -> None:
    keys = SenderKeys(app_store)
    sealed = [
        SealedKey(sender_device="d_s", recipient_device=r, epoch=e, sealed=f"{r}{e}")
        for r in ("d_1", "d_2")
        for e in (1, 2)
    ]
    assert keys.put(CID, sealed, uploaded_at=5, expires_at=10**10) == 4
    assert [k.sealed for k in keys.sealed_to(CID, 2, "d_1")] == ["d_12"]


def test_a_retention_job_stops_saving_once_a_newer_setting_restarts_it(app_store: Store) -> None:
    jobs = RetentionJobs(app_store)
    jobs.schedule("o_1", "o_1", None, requested_at=1)
    (job,) = jobs.pending()
    assert jobs.checkpoint(job, at=CID, step=1, cursor=None, uses={"2#d_s": 7})
    (saved,) = jobs.pending()
    assert (saved.at, saved.step, saved.uses) == (CID, 1, {"2#d_s": 7})
    jobs.schedule("o_1", "o_1", None, requested_at=2)  # the admin changed the setting again
    assert not jobs.checkpoint(job, at=CID, step=2, cursor=None, uses={})
    jobs.finish(job)  # the superseded run's finish leaves the new job in place
    (restarted,) = jobs.pending()
    assert (restarted.requested_at, restarted.at) == (2, None)
    jobs.finish(restarted)
    assert jobs.pending() == []


def test_retention_sees_each_kind_of_item_and_restamps_or_deletes_it(app_store: Store) -> None:
    messages, expiring = MessageRecords(app_store), ExpiringItems(app_store)
    messages.add(_message(1))
    messages.add(_message(2))
    (one, two), _ = expiring.page(CID, Expiring.MESSAGE, None, 10)
    assert (one.seq, one.epoch, one.sender_device, one.stored_at) == (1, 2, "d_sender", NOW)
    markers, _ = expiring.page(CID, Expiring.MARKER, None, 10)
    assert len(markers) == 2 and all(m.stored_at == NOW for m in markers)
    expiring.apply([(two, NOW + 5000)], [one])
    assert [(m.seq, m.expires_at) for m in messages.after(CID, 0, 10).messages] == [(2, NOW + 5000)]
