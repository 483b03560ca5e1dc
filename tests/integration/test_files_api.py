"""Files through the API (docs/protocol.md, section 18), on both stores: upload slots only for
those who may post, a blob bound to its channel and referenced once by its uploader's message, a
download URL only for current members, 404 for another organisation's ids; and a client that
refuses a blob the server swapped or cut short.

The blobs live in a real data directory (LocalObjectStore); the transfer checks each signed URL
exactly as the `bocage serve` gateway does (that gateway, and S3, over HTTP: tests/e2e)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from bocage.client.api import ApiError
from bocage.client.filecrypt import TamperedFile, TruncatedFile, blob_size
from bocage.client.files import FileUnavailable, fetch_file, send_file
from bocage.client.profile import OperatorKey
from chalicelib import wiring
from chalicelib.adapters.local_objects import BLOB_PATH, LocalObjectStore
from chalicelib.adapters.records.files import FileRecords
from chalicelib.domain.files import PENDING_FILES, PLAN_LIMITS, SLOT_SECONDS, UNREFERENCED_SECONDS
from chalicelib.domain.organisation import Plan
from chalicelib.ports import Store
from tests.support import (
    People,
    SignedApi,
    messenger_for,
    scan_all,
)

PHOTO = secrets.token_bytes(150_000)


class StoreTransfer:
    """PUT and GET on signed URLs, checked by the store as its gateway checks them."""

    def __init__(self, objects: LocalObjectStore) -> None:
        self.objects = objects

    def _parse(self, url: str, method: str) -> tuple[str, int]:
        parts = urlsplit(url)
        key = parts.path[len(BLOB_PATH) :]
        return key, self.objects.check(method, key, dict(parse_qsl(parts.query)))

    def put(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        key, size = self._parse(url, "PUT")
        assert headers["Content-Length"] == str(size) == str(len(body))
        self.objects.write(key, body)

    def get(self, url: str, limit: int) -> bytes:
        key, _ = self._parse(url, "GET")
        with self.objects.path_of(key).open("rb") as blob:
            data = blob.read(limit + 1)
        if len(data) > limit:
            raise FileUnavailable(f"more than {limit} bytes")
        return data


@pytest.fixture
def transfer(container: wiring.Container) -> StoreTransfer:
    assert isinstance(container.objects, LocalObjectStore)
    return StoreTransfer(container.objects)


@pytest.fixture
def group(people: People) -> tuple[Any, Any, str]:
    alice, bob = people.join("alice"), people.join("bob")
    cid = alice.create_channel("group", "Chantier")["channel_id"]
    alice.add_member(cid, people.info["bob"]["member_id"])
    return alice, bob, cid


@pytest.fixture
def stranger(people: People, api: SignedApi, operator: OperatorKey) -> Any:
    """The owner of another organisation."""
    other = api.create_org(operator, name="Autre")
    keys, info = api.activate(other["activation_code"], "Stranger")
    return messenger_for(api, keys, people.tmp / "stranger", info.body)


def test_a_photo_goes_encrypted_and_comes_back_whole(
    group: tuple[Any, Any, str], transfer: StoreTransfer, app_store: Store
) -> None:
    alice, bob, cid = group
    sent = send_file(alice, cid, PHOTO, "façade nord.jpg", "image/jpeg", "La façade", transfer=transfer)
    attachment = sent["attachment"]
    assert attachment["stored_bytes"] == blob_size(len(PHOTO))
    meta, data = fetch_file(bob, cid, sent["message_id"], transfer=transfer)
    assert data == PHOTO and meta["name"] == "façade nord.jpg" and meta["mime"] == "image/jpeg"
    stored = transfer.objects.path_of(f"{alice.info['org_id']}/{cid}/{attachment['blob_id']}").read_bytes()
    assert PHOTO[:64] not in stored and b"jpeg" not in stored
    everything = repr(scan_all(app_store))
    assert "façade" not in everything and "image/jpeg" not in everything  # never in clear
    blob_item = next(i for i in scan_all(app_store) if i.get("blob_id") == attachment["blob_id"])
    assert blob_item["message_id"] == sent["message_id"] and blob_item["expires_at"] == sent["expires_at"]


def test_slots_only_for_those_who_may_post(
    people: People, group: tuple[Any, Any, str], stranger: Any
) -> None:
    _, bob, cid = group
    carol = people.join("carol")  # in the organisation, not in the channel
    tribe = people.owner.create_channel("tribe", "Annonces")["channel_id"]
    people.owner.add_member(tribe, people.info["bob"]["member_id"])  # a reader, not an author
    for who, channel in ((carol, cid), (bob, tribe)):
        with pytest.raises(ApiError) as refused:
            who.client.request("POST", f"/channels/{channel}/files", {"size": 1000})
        assert refused.value.status == 403
    with pytest.raises(ApiError) as hidden:
        stranger.client.request("POST", f"/channels/{cid}/files", {"size": 1000})
    assert hidden.value.status == 404


def test_the_plan_limits_a_file_size_before_anything_is_stored(
    group: tuple[Any, Any, str], transfer: StoreTransfer, container: wiring.Container
) -> None:
    alice, _, cid = group
    limit = PLAN_LIMITS[container.orgs.get(alice.info["org_id"]).plan]
    with pytest.raises(ApiError) as too_large:
        alice.client.request("POST", f"/channels/{cid}/files", {"size": limit + 1})
    assert too_large.value.status == 413 and str(limit) in too_large.value.message
    for bad in (0, -5, "12", True):
        with pytest.raises(ApiError) as refused:
            alice.client.request("POST", f"/channels/{cid}/files", {"size": bad})
        assert refused.value.status == 400
    blobs = transfer.objects.path_of("x").parent
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def _slot(who: Any, cid: str, size: int = 1000) -> dict[str, Any]:
    slot: dict[str, Any] = who.client.request("POST", f"/channels/{cid}/files", {"size": size})
    return slot


def _refer(who: Any, cid: str, blob_id: str, message_id: str) -> dict[str, Any]:
    done: dict[str, Any] = who.client.request(
        "PUT", f"/channels/{cid}/files/{blob_id}", {"message_id": message_id}
    )
    return done


def _status(call: Any) -> int:
    with pytest.raises(ApiError) as refused:
        call()
    return refused.value.status


def test_a_blob_is_referenced_once_by_its_uploaders_message_in_its_channel(
    people: People, group: tuple[Any, Any, str], transfer: StoreTransfer
) -> None:
    alice, bob, cid = group
    other_cid = alice.create_channel("group", "Autre")["channel_id"]
    slot = _slot(alice, cid)
    blob_id = slot["blob_id"]
    first = alice.send_text(cid, "avec pièce jointe")["message_id"]
    assert _status(lambda: _refer(alice, cid, blob_id, first)) == 409  # not uploaded yet
    transfer.put(slot["upload_url"], slot["headers"], bytes(1000))
    bobs = bob.send_text(cid, "de Bob")["message_id"]
    assert _status(lambda: _refer(bob, cid, blob_id, bobs)) == 403  # not his upload
    assert _status(lambda: _refer(alice, cid, blob_id, bobs)) == 403  # not her message
    assert _status(lambda: _refer(alice, other_cid, blob_id, first)) == 404  # another channel
    assert _status(lambda: _refer(alice, cid, blob_id, "no-such-message")) == 404
    done = _refer(alice, cid, blob_id, first)
    assert done["message_id"] == first
    assert _refer(alice, cid, blob_id, first) == done  # a retry lands once
    second = alice.send_text(cid, "encore")["message_id"]
    assert _status(lambda: _refer(alice, cid, blob_id, second)) == 409  # already referenced


def test_download_urls_only_for_current_members(
    people: People, group: tuple[Any, Any, str], transfer: StoreTransfer, stranger: Any
) -> None:
    alice, bob, cid = group
    sent = send_file(alice, cid, b"compte rendu", "cr.txt", "text/plain", transfer=transfer)
    blob_id = sent["attachment"]["blob_id"]
    assert bob.client.request("GET", f"/channels/{cid}/files/{blob_id}")["url"]
    carol = people.join("carol")
    assert _status(lambda: carol.client.request("GET", f"/channels/{cid}/files/{blob_id}")) == 403
    unreferenced = _slot(alice, cid)["blob_id"]
    assert _status(lambda: bob.client.request("GET", f"/channels/{cid}/files/{unreferenced}")) == 404
    assert _status(lambda: bob.client.request("GET", f"/channels/{cid}/files/b_aaaaaaaaaaaaaaaa")) == 404
    alice.remove_member(cid, people.info["bob"]["member_id"])
    assert _status(lambda: bob.client.request("GET", f"/channels/{cid}/files/{blob_id}")) in {403, 404}
    own = stranger.create_channel("group", "Chez moi")["channel_id"]
    assert _status(lambda: stranger.client.request("GET", f"/channels/{cid}/files/{blob_id}")) == 404
    assert _status(lambda: stranger.client.request("GET", f"/channels/{own}/files/{blob_id}")) == 404
    mine = stranger.send_text(own, "x")["message_id"]
    assert _status(lambda: _refer(stranger, own, blob_id, mine)) == 404


def test_expired_slots_are_refused(group: tuple[Any, Any, str], transfer: StoreTransfer, clock: Any) -> None:
    alice, _, cid = group
    slot = _slot(alice, cid)
    clock.advance(SLOT_SECONDS + 1)
    with pytest.raises(Exception, match="expired"):
        transfer.put(slot["upload_url"], slot["headers"], bytes(1000))
    late = _slot(alice, cid)
    transfer.put(late["upload_url"], late["headers"], bytes(1000))
    clock.advance(UNREFERENCED_SECONDS + 1)
    message_id = alice.send_text(cid, "trop tard")["message_id"]
    assert _status(lambda: _refer(alice, cid, late["blob_id"], message_id)) == 404


def test_a_client_refuses_a_blob_the_server_swapped_or_cut_short(
    group: tuple[Any, Any, str], transfer: StoreTransfer
) -> None:
    alice, bob, cid = group
    sent = send_file(alice, cid, PHOTO, "plan.pdf", "application/pdf", transfer=transfer)
    decoy = send_file(
        alice, cid, secrets.token_bytes(len(PHOTO)), "plan.pdf", "application/pdf", transfer=transfer
    )
    org = alice.info["org_id"]
    target = transfer.objects.path_of(f"{org}/{cid}/{sent['attachment']['blob_id']}")
    original = target.read_bytes()
    target.write_bytes(transfer.objects.path_of(f"{org}/{cid}/{decoy['attachment']['blob_id']}").read_bytes())
    with pytest.raises(TamperedFile):
        fetch_file(bob, cid, sent["message_id"], transfer=transfer)
    target.write_bytes(original[: 17 + 65_552])  # the first chunk alone
    with pytest.raises(TruncatedFile):
        fetch_file(bob, cid, sent["message_id"], transfer=transfer)
    target.write_bytes(original)
    assert fetch_file(bob, cid, sent["message_id"], transfer=transfer)[1] == PHOTO


def _stored(transfer: StoreTransfer, who: Any, cid: str, blob_id: str) -> int | None:
    return transfer.objects.size_of(f"{who.info['org_id']}/{cid}/{blob_id}")


def test_delete_for_everyone_deletes_the_blob_at_once(
    group: tuple[Any, Any, str], transfer: StoreTransfer, app_store: Store
) -> None:
    alice, bob, cid = group
    sent = send_file(alice, cid, PHOTO, "photo.jpg", "image/jpeg", transfer=transfer)
    blob_id = sent["attachment"]["blob_id"]
    assert _stored(transfer, alice, cid, blob_id) == sent["attachment"]["stored_bytes"]
    alice.delete(cid, sent["message_id"])
    assert _stored(transfer, alice, cid, blob_id) is None
    assert _status(lambda: bob.client.request("GET", f"/channels/{cid}/files/{blob_id}")) == 404
    assert not [i for i in scan_all(app_store) if blob_id in repr(i) and not i["pk"].startswith("FILEEXPIRY")]


def test_no_blob_outlives_its_message_nor_an_hour_unreferenced(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    container: wiring.Container,
    clock: Any,
) -> None:
    alice, bob, cid = group
    kept = send_file(alice, cid, b"plan v1", "plan.txt", "text/plain", transfer=transfer)
    orphan = _slot(alice, cid, 300)
    transfer.put(orphan["upload_url"], orphan["headers"], bytes(300))
    clock.advance(UNREFERENCED_SECONDS + 1)
    assert container.files.purge(deadline=float("inf")) == 1
    assert _stored(transfer, alice, cid, orphan["blob_id"]) is None  # never referenced: gone
    assert _stored(transfer, alice, cid, kept["attachment"]["blob_id"]) is not None  # its message lives
    assert fetch_file(bob, cid, kept["message_id"], transfer=transfer)[1] == b"plan v1"
    clock.advance(kept["expires_at"] - clock.now() - 1)
    assert container.files.purge(deadline=float("inf")) == 0
    assert _stored(transfer, alice, cid, kept["attachment"]["blob_id"]) is not None
    assert (
        people.owner.client.request("GET", "/files/usage")["bytes_in_use"]
        == kept["attachment"]["stored_bytes"]
    )
    clock.advance(1)  # the message expires now: its blob with it
    assert container.files.purge(deadline=float("inf")) == 1
    assert _stored(transfer, alice, cid, kept["attachment"]["blob_id"]) is None
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 0
    assert container.files.purge(deadline=float("inf")) == 0


def test_a_blob_follows_its_messages_retention_when_it_is_lengthened_or_shortened(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    container: wiring.Container,
    clock: Any,
    app_store: Store,
) -> None:
    """A blob lives exactly as long as its message, whatever the retention becomes after it was
    sent: a longer one keeps it past its first expiry, a shorter one takes it at once."""
    alice, bob, cid = group
    owner = people.owner.client
    assert owner.request("PUT", "/retention", {"duration": "3m"})["retention_days"] == 90
    container.retention.run()
    sent = send_file(alice, cid, b"plan v2", "plan.txt", "text/plain", transfer=transfer)
    blob_id = sent["attachment"]["blob_id"]
    stored = sent["attachment"]["stored_bytes"]

    assert owner.request("PUT", "/retention", {"duration": "1y"})["retention_days"] == 365
    container.retention.run()
    clock.advance(sent["expires_at"] - clock.now() + 1)  # past the 90 days it was sent under
    assert container.files.purge(deadline=float("inf")) == 0
    assert _stored(transfer, alice, cid, blob_id) == stored
    assert fetch_file(bob, cid, sent["message_id"], transfer=transfer)[1] == b"plan v2"

    owner.request("PUT", f"/channels/{cid}/retention", {"duration": "7d"})
    # Before the job has run, the file is already refused, as its message is hidden.
    assert _status(lambda: bob.client.request("GET", f"/channels/{cid}/files/{blob_id}")) == 404
    container.retention.run()
    assert _stored(transfer, alice, cid, blob_id) is None
    assert owner.request("GET", "/files/usage")["bytes_in_use"] == 0
    assert not [i for i in scan_all(app_store) if blob_id in repr(i)]  # no record, no purge entry
    assert container.files.purge(deadline=float("inf")) == 0


def test_a_lifecycle_class_that_cannot_be_set_stops_the_job_until_it_can(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    container: wiring.Container,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A longer retention needs a longer lifecycle class on the bytes before the record moves: if
    the object store refuses it (throttled, down), the job stops and tries again, rather than
    leave a class that would delete the bytes while their message lives."""
    alice, bob, cid = group
    owner = people.owner.client
    owner.request("PUT", "/retention", {"duration": "30d"})
    container.retention.run()
    sent = send_file(alice, cid, b"plan v3", "plan.txt", "text/plain", transfer=transfer)
    owner.request("PUT", "/retention", {"duration": "1y"})
    classes: list[int] = []

    def refused(key: str, days: int) -> None:
        raise ConnectionError("object store unavailable")

    monkeypatch.setattr(container.objects, "set_lifetime", refused)
    with pytest.raises(ConnectionError):
        container.retention.run()
    monkeypatch.setattr(container.objects, "set_lifetime", lambda key, days: classes.append(days))
    container.retention.run()
    assert classes == [366]  # set on the next run, with the record
    clock.advance(sent["expires_at"] - clock.now() + 1)
    assert container.files.purge(deadline=float("inf")) == 0
    assert fetch_file(bob, cid, sent["message_id"], transfer=transfer)[1] == b"plan v3"


def test_a_blob_removed_by_two_paths_at_once_is_given_back_once(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    container: wiring.Container,
    app_store: Store,
    clock: Any,
) -> None:
    """The retention job's page read before a "delete for everyone" of the same message: both
    remove the blob, and the organisation's storage in use goes down once, never below zero."""
    alice, _, cid = group
    owner = people.owner.client
    sent = send_file(alice, cid, b"brouillon", "b.txt", "text/plain", transfer=transfer)
    stale = [i for i in scan_all(app_store) if i["sk"] == f"FILE#{sent['attachment']['blob_id']}"]
    assert owner.request("GET", "/files/usage")["bytes_in_use"] == sent["attachment"]["stored_bytes"]
    alice.delete(cid, sent["message_id"])
    clock.advance(2 * 86400)  # a day's retention: the job's page says the blob must go now
    assert container.files.follow_retention(1, stale) == (0, 0)  # it went already: nothing twice
    assert owner.request("GET", "/files/usage")["bytes_in_use"] == 0


def test_storage_in_use_is_counted_and_the_operators_limits_apply(
    people: People,
    group: tuple[Any, Any, str],
    stranger: Any,
    transfer: StoreTransfer,
    api: SignedApi,
    operator: OperatorKey,
) -> None:
    alice, _, cid = group
    org_id = alice.info["org_id"]
    usage = people.owner.client.request("GET", "/files/usage")
    assert usage["bytes_in_use"] == 0 and usage["max_file_bytes"] == PLAN_LIMITS[Plan.FREE]
    assert _status(lambda: alice.client.request("GET", "/files/usage")) == 403  # admins only
    sent = send_file(alice, cid, PHOTO, "a.jpg", "image/jpeg", transfer=transfer)
    in_use = sent["attachment"]["stored_bytes"]
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == in_use
    # The impact figures show the same bytes, and what keeping them a month emits (0.808 g per GB).
    impact = people.owner.client.request("GET", "/impact/org")
    assert impact["storage"] == {"bytes_in_use": in_use, "co2e_mg_per_month": round(in_use * 808 / 10**9)}
    assert impact["assumptions"]["co2e_ug_per_gb_month"] == 808_000
    assert "Cloud Carbon Footprint" in impact["assumptions"]["sources"]["storage"]
    assert stranger.client.request("GET", "/impact/org")["storage"]["bytes_in_use"] == 0

    limits = {"max_file_bytes": 10_000, "quota_bytes": in_use + 5_000}
    assert api.call("PUT", f"/orgs/{org_id}/files", limits, signer=people.keys["owner"]).status == 401
    set_by_operator = api.call("PUT", f"/orgs/{org_id}/files", limits, signer=operator)
    assert set_by_operator.status == 200 and set_by_operator.body["max_file_bytes"] == 10_000
    assert api.call("PUT", "/orgs/o_aaaaaaaaaaaaaaaa/files", limits, signer=operator).status == 404
    with pytest.raises(ApiError) as too_big:
        send_file(alice, cid, bytes(20_000), "b.bin", "application/octet-stream", transfer=transfer)
    assert too_big.value.status == 413 and "10000" in too_big.value.message
    send_file(alice, cid, bytes(3_000), "c.bin", "application/octet-stream", transfer=transfer)
    with pytest.raises(ApiError) as full:
        send_file(alice, cid, bytes(3_000), "d.bin", "application/octet-stream", transfer=transfer)
    assert full.value.status == 403 and "storage is full" in full.value.message
    blobs = transfer.objects.path_of("x").parent
    assert len([p for p in blobs.rglob("*") if p.is_file()]) == 2  # nothing half-stored

    alice.delete(cid, sent["message_id"])
    after = people.owner.client.request("GET", "/files/usage")["bytes_in_use"]
    assert after == blob_size(3_000)
    reset = api.call(
        "PUT", f"/orgs/{org_id}/files", {"max_file_bytes": None, "quota_bytes": None}, signer=operator
    )
    assert reset.body["max_file_bytes"] == PLAN_LIMITS[Plan.FREE]


def test_upload_slots_reserve_their_bytes_so_many_slots_cannot_pass_the_quota(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    api: SignedApi,
    operator: OperatorKey,
    container: wiring.Container,
    clock: Any,
) -> None:
    """A member taking slot after slot (or in parallel) without referencing any is refused once
    their sizes reach the quota; the bytes come back when the slots expire unreferenced."""
    alice, _, cid = group
    org_id = alice.info["org_id"]
    limits = {"max_file_bytes": 10_000, "quota_bytes": 25_000}
    assert api.call("PUT", f"/orgs/{org_id}/files", limits, signer=operator).status == 200
    slots = [_slot(alice, cid, 10_000), _slot(alice, cid, 10_000)]
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 20_000
    assert _status(lambda: _slot(alice, cid, 10_000)) == 403  # 30,000 would pass 25,000
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 20_000  # given back
    transfer.put(slots[0]["upload_url"], slots[0]["headers"], bytes(10_000))
    sent = alice.send_text(cid, "plan")
    _refer(alice, cid, slots[0]["blob_id"], sent["message_id"])
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 20_000  # counted once
    clock.advance(UNREFERENCED_SECONDS + 1)
    assert container.files.purge(deadline=float("inf")) == 1  # the unreferenced slot
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 10_000
    assert _slot(alice, cid, 10_000)["size"] == 10_000  # room again


def test_a_blob_bound_by_two_messages_at_once_is_counted_and_given_back_once(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    container: wiring.Container,
    clock: Any,
    app_store: Store,
) -> None:
    """Two binds racing (replayed here in the order that loses): the loser's purge entry goes
    with it, so the bytes are given back once, at the winner's message's expiry."""
    alice, _, cid = group
    slot = _slot(alice, cid, 1000)
    transfer.put(slot["upload_url"], slot["headers"], bytes(1000))
    first, first_at = alice.send_text(cid, "premier"), clock.now()
    clock.advance(60)
    second, second_at = alice.send_text(cid, "second"), clock.now()  # expires a minute later
    records = FileRecords(app_store)
    stale = records.get(cid, slot["blob_id"])  # what both binds read before either wrote
    assert stale is not None and stale.message_id is None
    assert records.reference(stale, first["message_id"], first["expires_at"], first_at) is True
    assert records.reference(stale, second["message_id"], second["expires_at"], second_at) is False

    def usage() -> int:
        return int(people.owner.client.request("GET", "/files/usage")["bytes_in_use"])

    assert usage() == 1000
    clock.advance(second["expires_at"] - clock.now() + 1)  # past both messages' expiry
    assert container.files.purge(deadline=float("inf")) == 1
    assert usage() == 0  # given back once, never below zero


def test_a_member_cannot_hold_the_quota_with_slots_never_used(
    people: People,
    group: tuple[Any, Any, str],
    transfer: StoreTransfer,
    api: SignedApi,
    operator: OperatorKey,
    container: wiring.Container,
    clock: Any,
) -> None:
    """At most three largest files' worth of a member's slots wait for their message: the fourth
    is 429 for them, and the others still upload; unused slots come back when they expire."""
    alice, bob, cid = group
    limits = {"max_file_bytes": 10_000, "quota_bytes": 1_000_000}
    assert api.call("PUT", f"/orgs/{alice.info['org_id']}/files", limits, signer=operator).status == 200
    for _ in range(PENDING_FILES):
        _slot(alice, cid, 10_000)
    with pytest.raises(ApiError) as held:
        _slot(alice, cid, 10_000)
    assert held.value.status == 429 and "not yet sent" in held.value.message
    assert _slot(bob, cid, 10_000)["size"] == 10_000  # the others are not held up
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 40_000
    clock.advance(UNREFERENCED_SECONDS + 1)
    assert container.files.purge(deadline=float("inf")) == 4
    assert people.owner.client.request("GET", "/files/usage")["bytes_in_use"] == 0
    assert _slot(alice, cid, 10_000)["size"] == 10_000  # her slots came back with their expiry
    for n in range(PENDING_FILES + 1):  # files sent one after the other never count as held
        send_file(alice, cid, bytes(5_000), f"{n}.bin", "application/octet-stream", transfer=transfer)


def test_a_follower_downloads_the_photos_of_their_public_tribe_only(
    people: People, api: SignedApi, transfer: StoreTransfer, tmp_path: Path
) -> None:
    """A post's photo reaches the town's followers (read-only, like the post); a private group's
    file does not, nor a file of a tribe they do not follow."""
    from tests.integration.test_followers import follow, public_tribe

    cid, url = public_tribe(people)
    lea = follow(api, url, tmp_path / "lea", "Léa")
    sent = send_file(people.owner, cid, PHOTO, "marché.jpg", "image/jpeg", "Le marché", transfer=transfer)
    meta, data = fetch_file(lea, cid, sent["message_id"], transfer=transfer)
    assert data == PHOTO and meta["name"] == "marché.jpg"
    private = people.owner.create_channel("group", "Bureau")["channel_id"]
    other = send_file(people.owner, private, PHOTO, "plan.jpg", "image/jpeg", transfer=transfer)
    blob = other["attachment"]["blob_id"]
    assert _status(lambda: lea.client.request("GET", f"/channels/{private}/files/{blob}")) == 403
    assert _status(lambda: lea.client.request("POST", f"/channels/{cid}/files", {"size": 100})) == 403
