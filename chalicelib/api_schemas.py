"""Request bodies of the REST API: validated at the edge, so services get clean values."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.domain.organisation import Plan

# Deliberately loose: the mail server is the real judge; this catches typos early.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _not_blank(value: str) -> str:
    """Pydantic strips Unicode white space; the services strip with ``str.strip``, which also
    takes ASCII separators (U+001C..U+001F): a name of those alone must be refused here."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


#: A display name (organisation, member, channel): 1 to 120 characters, not blank.
Name = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_not_blank)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class CreateOrgBody(_Body):
    name: Name
    plan: Plan = Plan.FREE
    owner_name: Name = "Owner"
    owner_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


#: A signed statement (docs/protocol.md, 13.1): checked by chalicelib/domain/statements.py.
Statement = dict[str, Any]


class InviteBody(_Body):
    display_name: Name
    role: str = "member"
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    ticket: Statement | None = None


class LinkBody(_Body):
    ticket: Statement | None = None


class ActivateBody(_Body):
    code: str = Field(min_length=8, max_length=100)
    sign_public_key: str = Field(min_length=40, max_length=60)
    box_public_key: str = Field(min_length=40, max_length=60)
    proof: str = Field(min_length=80, max_length=100)
    device_name: str = Field(default="", max_length=120)
    display_name: str | None = Field(default=None, max_length=120)
    member_cert: Statement | None = None
    device_cert: Statement | None = None


class RoleBody(_Body):
    role: str
    statement: Statement | None = None


class StatementBody(_Body):
    """A removal or a revocation: the signed statement alone."""

    statement: Statement | None = None


class MentionChoiceBody(_Body):
    """A ``bocage/notify/v2`` statement: "mentions only" or "all" in one channel."""

    statement: Statement


class HistoryChoiceBody(_Body):
    """A ``bocage/history/v2`` statement: how many days of a public tribe new followers read."""

    statement: Statement


class CreateChannelBody(_Body):
    kind: Literal["tribe", "group"]
    name: Name
    membership: Statement | None = None
    id_seed: Annotated[str, Field(pattern=r"^[a-z2-7]{26}$")] | None = None  # makes the id (14.1)


class DirectBody(_Body):
    """Opening a direct conversation: its creation and the addition of the other member, signed."""

    membership: list[Statement] | None = Field(default=None, max_length=2)


class RenameChannelBody(_Body):
    name: Name


class ChannelRoleBody(_Body):
    role: Literal["author", "member"] = "member"
    membership: Statement | None = None


class MembershipBody(_Body):
    """Leaving or removing from a channel: the signed log entry."""

    membership: Statement | None = None


class SealedKey(_Body):
    recipient_device: str = Field(min_length=3, max_length=40)
    sender_device: str | None = Field(default=None, max_length=40)
    epoch: int | None = None
    sealed: str = Field(min_length=1, max_length=700)


class OrgNameBody(_Body):
    name: Name = Field(description="the organisation's name, as people see it")


class RetentionBody(_Body):
    duration: str | None = Field(default=None, max_length=20, description="90d, 12w, 3m, 1y; null: the org's")


class AuditRetentionBody(_Body):
    duration: str = Field(max_length=20, description="how long the audit log keeps an entry: 30d to 5y")


class PilotEndBody(_Body):
    choice: Literal["convert", "suspend"]


class BillingRunBody(_Body):
    month: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    dry_run: bool = False


class PutKeysBody(_Body):
    epoch: int = Field(ge=0)
    keys: list[SealedKey] = Field(min_length=1, max_length=500)


# -- Web Push ------------------------------------------------------------------------------------


class PushKeys(_Body):
    p256dh: str = Field(min_length=1, max_length=100, description="the device's P-256 key, base64url")
    auth: str = Field(min_length=1, max_length=40, description="the device's 16-byte auth secret, base64url")


class PushSubscriptionBody(_Body):
    """What the browser's ``PushSubscription.toJSON()`` gives (docs/protocol.md, "Web Push")."""

    endpoint: str = Field(min_length=1, max_length=1024, description="an https URL of a push service")
    expirationTime: int | None = None  # the browser's name for it
    keys: PushKeys
    muted: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=500, description="channels this device wants no push for"
    )


# -- public tribes and followers (docs/protocol.md, 16) ------------------------------------------


class PublishBody(_Body):
    """A tribe made public: the manager device's follower ticket, and an optional cap."""

    ticket: Statement
    cap: int | None = Field(default=None, ge=1, le=1_000_000)


class AskBody(_Body):
    """A follower's question to the town hall: its id and one sealed box per recipient device
    (docs/protocol.md, 20)."""

    question_id: str = Field(min_length=18, max_length=18)
    sealed: dict[str, str] = Field(min_length=1, max_length=64)


class AnswerBody(_Body):
    """A manager's answer, sealed to the asker's device; the tribe message that published it, if any."""

    sealed: str = Field(min_length=1, max_length=12_000)
    published_message_id: str | None = Field(default=None, min_length=1, max_length=40)


class JoinBody(_Body):
    link: str = Field(min_length=3, max_length=40)
    sign_public_key: str = Field(min_length=40, max_length=60)
    box_public_key: str = Field(min_length=40, max_length=60)
    proof: str = Field(min_length=80, max_length=100)
    follower_cert: Statement | None = None
    device_name: str = Field(default="", max_length=120)


# -- partner organisations (docs/protocol.md, section 22) ---------------------------------------


class PartnerInviteBody(_Body):
    ticket: Statement


class PartnerAcceptBody(_Body):
    code: str = Field(min_length=3, max_length=40)
    acceptance: Statement
    statement: Statement


class PartnerStatementBody(_Body):
    """The caller's partnership statement (countersigning) or end statement."""

    statement: Statement


# -- files (docs/protocol.md, section 18) ------------------------------------------------------


class FileSlotBody(_Body):
    size: int = Field(
        ge=1, le=2**31 - 1, strict=True, description="the encrypted blob's exact length in bytes"
    )


class FileReferenceBody(_Body):
    message_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="the uploader's message naming it")


class OrgPhotosBody(_Body):
    max_side: int = Field(strict=True, description="pixels, 480 to 4096: the longest side of a photo sent")


class FileLimitsBody(_Body):
    max_file_bytes: int | None = Field(
        default=None, ge=1, le=2**31 - 1, strict=True, description="null: the plan's"
    )
    quota_bytes: int | None = Field(default=None, ge=0, le=2**50, strict=True, description="null: the plan's")
