"""Encrypted file blobs as the server knows them (docs/protocol.md, section 18): an opaque id, a
channel, an uploader, a length, and the message that references it. Never a name, type or key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.organisation import Plan
from chalicelib.errors import BadRequest

#: The longest side of a photo as the organisation's devices send it (re-encoded on the device;
#: docs/protocol.md, 18): the organisation's admins choose it between these bounds.
PHOTO_MAX_SIDE = 1600
PHOTO_SIDE_RANGE = (480, 4096)
#: The largest blob an organisation's members may upload, by plan (bytes of the encrypted blob).
PLAN_LIMITS = {Plan.FREE: 5_000_000, Plan.PILOT: 25_000_000, Plan.PRO: 25_000_000}
#: What an organisation's files may take in all, by plan (bytes of blobs referenced or being
#: uploaded: a slot reserves its size when issued).
PLAN_QUOTAS = {Plan.FREE: 1_000_000_000, Plan.PILOT: 20_000_000_000, Plan.PRO: 20_000_000_000}
#: How long an upload URL works, and a download URL.
SLOT_SECONDS = 15 * 60
DOWNLOAD_SECONDS = 5 * 60
#: Uploads a member may have under way (slots not yet bound to a message), in largest files: more
#: would let one member hold the organisation's quota with slots they never use.
PENDING_FILES = 3
#: A blob no message references by then is deleted (the record expires, the job removes the bytes).
UNREFERENCED_SECONDS = 60 * 60
#: The object store's own expiry classes, in days (one lifecycle rule each, by tag, on S3): a
#: referenced blob is tagged with the shortest class its message's lifetime fits in, so that even
#: if the purge job never ran, its bytes would go at most a class step after its message. The
#: longest is the longest retention (5 years) and the bucket's backstop for untagged objects.
LIFETIME_CLASSES = (8, 31, 92, 183, 366, 731, 1096, 1827)


class StoredBlob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    blob_id: str
    org_id: str
    channel_id: str
    uploader: str  # member id
    size: int  # the exact length the upload URL was signed for
    created_at: int
    expires_at: int  # the record's expiry: an hour while unreferenced, then its message's
    message_id: str | None = None
    #: When its message was stored: retention counts from it, so the blob follows every change of
    #: the channel's retention as its message does (None: unreferenced, or bound before this field).
    message_stored_at: int | None = None
    #: Its size was added to the organisation's storage in use when its slot was issued (records
    #: written before slots reserved have False: they count from their reference on).
    reserved: bool = False

    @property
    def counted(self) -> bool:
        """Whether its size is in the organisation's storage in use."""
        return self.reserved or self.message_id is not None

    @property
    def object_key(self) -> str:
        """Where the bytes live in the object store: a prefix per organisation and channel."""
        return f"{self.org_id}/{self.channel_id}/{self.blob_id}"


@dataclass(frozen=True)
class FileLimits:
    """An organisation's limits: its plan's, unless the operator set its own."""

    max_file_bytes: int
    quota_bytes: int

    @classmethod
    def of(cls, plan: Plan, overrides: Mapping[str, int]) -> FileLimits:
        return cls(
            overrides.get("max_file_bytes", PLAN_LIMITS[plan]),
            overrides.get("quota_bytes", PLAN_QUOTAS[plan]),
        )


def lifetime_class(created_at: int, expires_at: int) -> int:
    """The shortest lifecycle class (days after the upload) that outlives the message."""
    days = -(-(expires_at - created_at) // 86400) + 1  # whole days, and one for the clock's skew
    return next((c for c in LIFETIME_CLASSES if c >= days), LIFETIME_CLASSES[-1])


def check_photo_side(side: int) -> int:
    low, high = PHOTO_SIDE_RANGE
    if not low <= side <= high:
        raise BadRequest(f"a photo's longest side is set between {low} and {high} pixels")
    return side
