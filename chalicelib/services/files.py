"""Upload slots, references and download URLs for encrypted file blobs (docs/protocol.md,
section 18). The bytes go straight between the client and the object store by signed URLs; this
service decides who may have one: a slot to a member who may post in the channel, a download URL
to a current member, a reference from the uploader's own message in the same channel, once."""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib.adapters.records.files import FileRecords
from chalicelib.domain.channel import require_may_send
from chalicelib.domain.envelope import Kind
from chalicelib.domain.events import MessageDeleted
from chalicelib.domain.files import (
    DOWNLOAD_SECONDS,
    PENDING_FILES,
    SLOT_SECONDS,
    UNREFERENCED_SECONDS,
    FileLimits,
    StoredBlob,
    lifetime_class,
)
from chalicelib.domain.ids import new_id
from chalicelib.domain.organisation import require_admin
from chalicelib.domain.principal import Principal
from chalicelib.domain.retention import DAY
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests
from chalicelib.ports import Clock, ObjectStore, Store
from chalicelib.services.channels import ChannelAccess, ChannelService
from chalicelib.services.event_bus import EventBus
from chalicelib.services.messaging import MessagingService
from chalicelib.services.organisations import OrganisationService

logger = logging.getLogger(__name__)


class FileService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        objects: ObjectStore,
        orgs: OrganisationService,
        channels: ChannelService,
        messaging: MessagingService,
    ) -> None:
        self._records = FileRecords(store)
        self._clock = clock
        self._objects = objects
        self._orgs = orgs
        self._channels = channels
        self._messaging = messaging

    def new_slot(self, who: Principal, channel_id: str, size: int) -> dict[str, Any]:
        """An upload URL for one blob of exactly ``size`` bytes, bound to this channel."""
        access = self._channels.access(who, channel_id)
        require_may_send(access.channel, access.membership, Kind.MESSAGE)
        if size < 1:
            raise BadRequest("size must be a positive number of bytes")
        limits = self.limits(who.org_id)
        limit = limits.max_file_bytes
        if size > limit:
            raise PayloadTooLarge(f"a file may be at most {limit} bytes once encrypted in this organisation")
        now = self._clock.now()
        blob = StoredBlob(
            blob_id=new_id("b"),
            org_id=who.org_id,
            channel_id=channel_id,
            uploader=who.member_id,
            size=size,
            created_at=now,
            expires_at=now + UNREFERENCED_SECONDS,
            reserved=True,
        )
        self._reserve(blob, limits)
        self._records.add(blob)
        url = self._objects.upload_url(blob.object_key, size, SLOT_SECONDS)
        return {
            "blob_id": blob.blob_id,
            "upload_url": url.url,
            "method": url.method,
            "headers": dict(url.headers),
            "max_size": limit,
            "size": size,
            "expires_at": url.expires_at,
        }

    def _reserve(self, blob: StoredBlob, limits: FileLimits) -> None:
        """Count the slot's bytes before its URL exists, so parallel slots cannot pass the quota
        together: add first, then give back and refuse if the total went over (no transaction).
        A member's slots not yet bound to a message are capped too, so that no one can hold the
        organisation's quota with slots they never use."""
        pending = self._records.count_pending(blob.org_id, blob.uploader, blob.size)
        cap = PENDING_FILES * limits.max_file_bytes
        if pending > cap:
            self._records.count_pending(blob.org_id, blob.uploader, -blob.size)
            raise TooManyRequests(
                f"you have {pending - blob.size} bytes of uploads not yet sent (at most {cap}): "
                "send or cancel them, or wait an hour"
            )
        total = self._records.count(blob.org_id, blob.size)
        if total > limits.quota_bytes:
            self._records.count(blob.org_id, -blob.size)
            self._records.count_pending(blob.org_id, blob.uploader, -blob.size)
            in_use, quota = total - blob.size, limits.quota_bytes
            raise Forbidden(
                f"the organisation's file storage is full ({in_use} of {quota} bytes): "
                "delete files or ask your operator for more"
            )

    def _blob(self, access: ChannelAccess, channel_id: str, blob_id: str) -> StoredBlob:
        """A blob of this channel, uploaded by a member of an organisation in it: the channel's
        or, in a shared group, a partner's, whose own quota it counts on (22.6)."""
        blob = self._records.get(channel_id, blob_id) if blob_id.startswith("b_") else None
        orgs = (access.channel.org_id, *access.channel.partner_orgs)
        if blob is None or blob.channel_id != channel_id or blob.org_id not in orgs:
            raise NotFound(f"no file {blob_id} in this channel")
        return blob

    def reference(self, who: Principal, channel_id: str, blob_id: str, message_id: str) -> dict[str, Any]:
        """Bind an uploaded blob to the uploader's message: it then lives exactly as long."""
        access = self._channels.access(who, channel_id)
        require_may_send(access.channel, access.membership, Kind.MESSAGE)
        blob = self._blob(access, channel_id, blob_id)
        if blob.uploader != who.member_id:
            raise Forbidden("only the member who uploaded a file may reference it")
        if blob.message_id is not None:
            if blob.message_id == message_id:  # a retried reference
                return self._answer(blob)
            raise Conflict("this file is already referenced by another message")
        message = self._messaging.find(channel_id, message_id)
        if message is None or message.deleted:
            raise NotFound(f"no message {message_id} in this channel")
        if message.sender_member != who.member_id or message.kind is not Kind.MESSAGE:
            raise Forbidden("a file is referenced by its uploader's own message")
        stored = self._objects.size_of(blob.object_key)
        if stored is None:
            raise Conflict("the file was not uploaded (or its slot expired): upload it again")
        if stored != blob.size:  # an S3-compatible store that ignored the signed length
            self._objects.delete(blob.object_key)
            raise BadRequest(f"the upload was {stored} bytes, not the {blob.size} its slot allowed")
        if not self._records.reference(blob, message_id, message.expires_at, message.stored_at):
            raise Conflict("this file is already referenced by another message")
        self._backstop(blob, message.expires_at)
        return self._answer(
            blob.model_copy(update={"message_id": message_id, "expires_at": message.expires_at})
        )

    def _backstop(self, blob: StoredBlob, expires_at: int) -> None:
        """Tag the bytes with their lifecycle class; a failure leaves the bucket's 5-year
        backstop and the purge job, so it is logged, not the member's error."""
        try:
            self._objects.set_lifetime(blob.object_key, lifetime_class(blob.created_at, expires_at))
        except Exception:
            logger.warning("file lifetime not set on the object store", exc_info=True)

    def download(self, who: Principal, channel_id: str, blob_id: str) -> dict[str, Any]:
        """A short-lived URL to fetch a referenced blob, for a current member of its channel."""
        access = self._channels.access(who, channel_id)
        if access.membership is None:
            raise Forbidden("you are not a member of this channel")
        blob = self._blob(access, channel_id, blob_id)
        days = self._channels.retention_days(access.channel)
        if blob.message_id is None or _due(blob, days) <= self._clock.now():
            raise NotFound(f"no file {blob_id} in this channel")  # or its message's time is up
        url = self._objects.download_url(blob.object_key, DOWNLOAD_SECONDS)
        return {**self._answer(blob), "url": url.url, "url_expires_at": url.expires_at}

    def limits(self, org_id: str) -> FileLimits:
        return FileLimits.of(self._orgs.get(org_id).plan, self._records.limits(org_id))

    def usage(self, who: Principal) -> dict[str, Any]:
        """The organisation's file storage in use and its limits (administrators)."""
        require_admin(who.role)
        limits = self.limits(who.org_id)
        return {
            "org_id": who.org_id,
            "bytes_in_use": self._records.bytes_in_use(who.org_id),
            "quota_bytes": limits.quota_bytes,
            "max_file_bytes": limits.max_file_bytes,
        }

    def set_limits(self, org_id: str, max_file_bytes: int | None, quota_bytes: int | None) -> dict[str, Any]:
        """The operator's limits for one organisation (None: back to its plan's)."""
        self._orgs.get(org_id)  # 404 for an unknown organisation
        self._records.set_limits(org_id, max_file_bytes, quota_bytes)
        limits = self.limits(org_id)
        return {"org_id": org_id, "max_file_bytes": limits.max_file_bytes, "quota_bytes": limits.quota_bytes}

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(MessageDeleted, self.message_deleted)

    def message_deleted(self, event: MessageDeleted) -> None:
        """Delete for everyone: the message's blob goes at once, bytes first."""
        blob_id = self._records.referenced_by(event.channel_id, event.message_id)
        blob = self._records.get(event.channel_id, blob_id) if blob_id is not None else None
        if blob is not None:
            self._remove(blob)

    def _remove(self, blob: StoredBlob) -> bool:
        """A blob's bytes, then its records, then its share of the storage in use: once, by
        whichever remover claims it first (False: another did)."""
        if not self._records.claim(blob):
            return False
        self._objects.delete(blob.object_key)
        self._records.delete(blob)
        if blob.counted:
            self._records.count(blob.org_id, -blob.size)
        return True

    def follow_retention(self, days: int, items: list[dict[str, Any]]) -> tuple[int, int]:
        """The retention job's page of a channel's blob records: each referenced blob gets its
        message's new expiry (record, purge entry and lifecycle tag), or goes now if its message
        does. Returns how many were re-stamped and deleted."""
        now = self._clock.now()
        restamped = deleted = 0
        for item in items:
            blob = self._records.blob_of(item)
            if blob.message_id is None:
                continue  # an upload slot keeps its hour
            if blob.message_stored_at is None:  # bound before blobs knew their message's time
                message = self._messaging.find(blob.channel_id, blob.message_id)
                blob = blob.model_copy(update={"message_stored_at": message.stored_at if message else 0})
            due = _due(blob, days)
            if due <= now:
                deleted += self._remove(blob)
            elif due != blob.expires_at and self._retag(blob, due) and self._records.restamp(blob, due):
                restamped += 1
        return restamped, deleted

    def _retag(self, blob: StoredBlob, due: int) -> bool:
        """The bytes' lifecycle class for their new expiry, before the record moves: a failure
        stops the job here, to retry this page (the record still holds its old expiry), rather
        than leave the object store a class that would delete the bytes before their message.
        False if the bytes are gone already (the blob is then removed)."""
        new_class = lifetime_class(blob.created_at, due)
        if new_class == lifetime_class(blob.created_at, blob.expires_at):
            return True
        try:
            self._objects.set_lifetime(blob.object_key, new_class)
        except Exception:
            if self._objects.size_of(blob.object_key) is not None:
                raise
            self._remove(blob)  # nothing left to keep: its records and its count go too
            return False
        return True

    def purge(self, *, deadline: float) -> int:
        """Delete the bytes of every blob whose time is up: its message expired, or none ever
        referenced it within the hour. Returns how many went; stops at ``deadline`` (monotonic)."""
        purged = 0
        while time.monotonic() < deadline:
            due = self._records.due(self._clock.now())
            if not due:
                break
            for entry in due:
                live = self._records.get(entry.channel_id, entry.blob_id)
                if live is None or live.expires_at <= self._clock.now():
                    self._objects.delete(entry.object_key)
                    if live is not None:
                        self._records.delete(live)
                    if entry.counted and entry.org_id:
                        self._records.count(entry.org_id, -entry.counted)
                    if entry.pending_of and entry.org_id:  # a slot never bound to a message
                        self._records.count_pending(entry.org_id, entry.pending_of, -entry.counted)
                    purged += 1
                self._records.forget_due(entry)
        if purged:
            logger.info("file blobs purged: %d", purged)
        return purged

    @staticmethod
    def _answer(blob: StoredBlob) -> dict[str, Any]:
        return {
            "blob_id": blob.blob_id,
            "channel_id": blob.channel_id,
            "message_id": blob.message_id,
            "size": blob.size,
            "expires_at": blob.expires_at,
        }


def _due(blob: StoredBlob, days: int) -> int:
    """When a referenced blob must go under ``days`` of retention: with its message (a blob bound
    before blobs knew their message's time: at the expiry it was given)."""
    if blob.message_stored_at is None:
        return blob.expires_at
    return blob.message_stored_at + days * DAY
