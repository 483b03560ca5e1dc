"""The single-table key layout, in one place (docs/architecture.md, "Store layout").

Partition ``ORG#o`` holds the organisation (``META``), its members
(``MEMBER#m``) and, right after each member, copies of their devices
(``MEMBER#m#DEVICE#d``), so one query lists members with their public keys.
"""

from __future__ import annotations

import hashlib

from chalicelib.domain.ids import is_follower_id

Key = tuple[str, str]

META = "META"
OWNERS = "OWNERS"
ORGS_PK = "ORGS"  # registry of organisations, for operators and monthly jobs
ORG_PREFIX = "ORG#"  # sort keys in the registry
MEMBER_PREFIX = "MEMBER#"
DEVICE_INFIX = "#DEVICE#"
ROSTER_PREFIX = "DEVICE#"
CHANNEL_PREFIX = "CHAN#"
MESSAGE_PREFIX = "MSG#"
CONNECTION_PREFIX = "CONN#"
JOBS_PK = "JOBS"
KEY_PREFIX = "KEY#"
MARKER_PREFIX = "MID#"
CURSOR_PREFIX = "CURSOR#"
RETENTION_PREFIX = "RETENTION#"
PARTNER_END_PREFIX = "PARTNEREND#"
MEMBERSHIP_LOG_PREFIX = "MLOG#"
FOLLOWER_PREFIX = "FOLLOWER#"
BLOB_PREFIX = "FILE#"
BLOB_REF_PREFIX = "FILEREF#"
BLOB_EXPIRY_PK = "FILEEXPIRY"
CALL_PREFIX = "CALL#"
MAX_SEQ = 10**12 - 1  # message sequence numbers are zero-padded to 12 digits


def org(org_id: str) -> Key:
    return f"ORG#{org_id}", META


def org_partition(org_id: str) -> str:
    """Everything of one organisation: itself, its members and their devices, its channels'
    index, its invoices and its impact counters."""
    return f"ORG#{org_id}"


def org_registry(org_id: str) -> Key:
    return ORGS_PK, f"{ORG_PREFIX}{org_id}"


def owner_count(org_id: str) -> Key:
    """The organisation's count of owners, the single item that guards "at least one owner"."""
    return f"ORG#{org_id}", OWNERS


def member(org_id: str, member_id: str) -> Key:
    return member_home(org_id, member_id), f"{MEMBER_PREFIX}{member_id}"


def member_home(org_id: str, member_id: str) -> str:
    """Where a member and their device copies live: a follower (``f_``) apart from the
    organisation's members, so member listings and billing never read followers."""
    return followers_partition(org_id) if is_follower_id(member_id) else org_partition(org_id)


def followers_partition(org_id: str) -> str:
    """An organisation's followers (docs/protocol.md, 16) and their devices, beside their count."""
    return f"FOLLOWERS#{org_id}"


def follower_count(org_id: str) -> Key:
    return followers_partition(org_id), "COUNT"


def join_link(channel_id: str) -> Key:
    """A public tribe's current join link (revoked ones stay, marked, until replaced)."""
    return f"CHAN#{channel_id}", "JOINLINK"


def recent_history(channel_id: str) -> Key:
    """A public tribe's latest signed "last N days" choice (docs/protocol.md, 23)."""
    return f"CHAN#{channel_id}", "HISTORY"


def join_rate(channel_id: str, hour: int) -> Key:
    """New followers of a tribe this hour (an ADD counter that expires after the hour)."""
    return f"JOINRATE#{channel_id}", f"H#{hour}"


def join_rate_from(channel_id: str, hour: int, block: str) -> Key:
    """New followers of a tribe this hour from one source block (an IPv4 address, an IPv6 /64 or
    /48: see ``source_tiers``), named by a digest of it (the address itself is not stored)."""
    digest = hashlib.sha256(block.encode()).hexdigest()[:24]
    return f"JOINRATE#{channel_id}", f"H#{hour}#A#{digest}"


def question_rate(asked_of: str, hour: int) -> Key:
    """Questions this hour from a device, to a tribe, or to a tribe from its new followers."""
    return f"QRATE#{asked_of}", f"H#{hour}"


def join_link_index(link_id: str) -> Key:
    """Which channel a join link's id names: what ``POST /join`` reads first."""
    return f"JOIN#{link_id}", META


PARTNER_PREFIX = "PARTNER#"


def partner_invitation(code: str) -> Key:
    """A partner invitation (docs/protocol.md, 22) by its code; it expires with its ticket."""
    return f"PARTNERINV#{code}", META


def partner_invitation_claim(code: str) -> Key:
    """Written once, conditionally, by the one acceptance an invitation takes."""
    return f"PARTNERINV#{code}", "ACCEPTED"


def partnership(org_a: str, org_b: str) -> Key:
    """The one record of two organisations' partnership, whichever side invited."""
    low, high = sorted((org_a, org_b))
    return f"PARTNERSHIP#{low}#{high}", META


def shared_memberships(host_org: str, member_org: str) -> str:
    """The memberships of ``member_org``'s members in ``host_org``'s channels (22.6): what an
    end's clean-up walks, instead of both organisations' members and channels."""
    return f"SHARED#{host_org}#{member_org}"


def shared_channel_prefix(channel_id: str) -> str:
    """One channel's entries in a pair's index of shared memberships."""
    return f"{CHANNEL_PREFIX}{channel_id}#"


def shared_membership(host_org: str, member_org: str, channel_id: str, member_id: str) -> Key:
    """One partner's member in one shared channel, sorted by channel so a channel's are together."""
    return shared_memberships(host_org, member_org), f"{shared_channel_prefix(channel_id)}{member_id}"


def partner_end_job(org_a: str, org_b: str) -> Key:
    """The pending clean-up of an ended partnership, whichever side ended it."""
    low, high = sorted((org_a, org_b))
    return JOBS_PK, f"{PARTNER_END_PREFIX}{low}#{high}"


def org_partner(org_id: str, partner_org_id: str) -> Key:
    """An organisation's pointer to a partner: what ``GET /partners`` walks."""
    return org_partition(org_id), f"{PARTNER_PREFIX}{partner_org_id}"


def member_device(org_id: str, member_id: str, device_id: str) -> Key:
    return member_home(org_id, member_id), f"{member_devices_prefix(member_id)}{device_id}"


def member_devices_prefix(member_id: str) -> str:
    """The sort-key prefix of one member's device copies, listed right after the member."""
    return f"{MEMBER_PREFIX}{member_id}{DEVICE_INFIX}"


def device(device_id: str) -> Key:
    return f"DEVICE#{device_id}", META


def invitation(code_hash: str) -> Key:
    return f"INVITE#{code_hash}", META


def nonce(subject: str, nonce_value: str) -> Key:
    return f"NONCE#{subject}", nonce_value


def channel(channel_id: str) -> Key:
    return f"CHAN#{channel_id}", META


def channel_partition(channel_id: str) -> str:
    """Everything of one channel: members, roster, keys, messages, markers, connections."""
    return f"CHAN#{channel_id}"


def member_partition(member_id: str) -> str:
    """A member's side of their channel memberships and of their connections."""
    return f"MEMBER#{member_id}"


def device_partition(device_id: str) -> str:
    """A device's read cursors."""
    return f"DEVICE#{device_id}"


def org_channel(org_id: str, channel_id: str) -> Key:
    """The organisation's channels, for jobs that walk them all (retention)."""
    return f"ORG#{org_id}", f"{CHANNEL_PREFIX}{channel_id}"


def retention_job(scope: str) -> Key:
    return JOBS_PK, f"{RETENTION_PREFIX}{scope}"


#: A channel's messages of one month, counted on its ``STATE`` item: ``m#YYYY-MM``.
MONTH_COUNT_PREFIX = "m#"


def month_count_attribute(month: str) -> str:
    """The ``STATE`` attribute counting a channel's messages stored in ``month`` (``YYYY-MM``)."""
    return f"{MONTH_COUNT_PREFIX}{month}"


def channel_state(channel_id: str) -> Key:
    """Atomic counters only: the ``roster`` version, the message ``seq``, the ``members`` count."""
    return f"CHAN#{channel_id}", "STATE"


def channel_floor(channel_id: str) -> Key:
    """The highest message number the retention job deleted: gaps below it are not in flight."""
    return f"CHAN#{channel_id}", "FLOOR"


def channel_epoch(channel_id: str) -> Key:
    """The key epoch and when it started, moved on by conditional writes."""
    return f"CHAN#{channel_id}", "EPOCH"


def channel_member(channel_id: str, member_id: str) -> Key:
    """A follower's place in a public tribe sorts apart, so listing its members reads no follower."""
    prefix = FOLLOWER_PREFIX if is_follower_id(member_id) else MEMBER_PREFIX
    return f"CHAN#{channel_id}", f"{prefix}{member_id}"


def channel_device(channel_id: str, device_id: str) -> Key:
    """The channel's device roster: who senders distribute their keys to."""
    return f"CHAN#{channel_id}", f"{ROSTER_PREFIX}{device_id}"


def member_channel(member_id: str, channel_id: str) -> Key:
    return f"MEMBER#{member_id}", f"{CHANNEL_PREFIX}{channel_id}"


def sender_key(channel_id: str, epoch: int, recipient_device: str, sender_device: str) -> Key:
    """Sorted by recipient, so a device fetches all its keys for an epoch in one query."""
    return f"CHAN#{channel_id}", f"{key_prefix(epoch, recipient_device)}{sender_device}"


def key_prefix(epoch: int, recipient_device: str) -> str:
    return f"{KEY_PREFIX}{epoch:010d}#{recipient_device}#"


def message(channel_id: str, seq: int) -> Key:
    return f"CHAN#{channel_id}", message_sk(seq)


def message_sk(seq: int) -> str:
    return f"{MESSAGE_PREFIX}{seq:012d}"


LOG_MEMBER_PREFIX = "LOGMEMBER#"


def log_member(channel_id: str, member_id: str) -> Key:
    """A member the channel's membership log names: as an entry's subject or its signer's."""
    return channel_partition(channel_id), f"{LOG_MEMBER_PREFIX}{member_id}"


def log_members_complete(channel_id: str) -> Key:
    """Present once every member the log names has its ``LOGMEMBER#`` item (kept since creation,
    or gathered once from the whole log for a channel older than these items)."""
    return channel_partition(channel_id), "LOGMEMBERS"


def membership_entry(channel_id: str, seq: int) -> Key:
    """Entry ``seq`` of the channel's signed membership log: put if absent, never changed."""
    return f"CHAN#{channel_id}", f"{MEMBERSHIP_LOG_PREFIX}{seq:012d}"


def message_marker(channel_id: str, message_id: str) -> Key:
    """Client message id → sequence number: what makes a resent message land once."""
    return f"CHAN#{channel_id}", f"{MARKER_PREFIX}{message_id}"


def blob(channel_id: str, blob_id: str) -> Key:
    """An encrypted file blob of a channel (docs/protocol.md, section 18)."""
    return f"CHAN#{channel_id}", f"{BLOB_PREFIX}{blob_id}"


def message_blob(channel_id: str, message_id: str) -> Key:
    """The one blob a message references: found again when the message is deleted."""
    return f"CHAN#{channel_id}", f"{BLOB_REF_PREFIX}{message_id}"


def org_files_usage(org_id: str) -> Key:
    """The organisation's file storage in use, in bytes (a counter)."""
    return f"ORG#{org_id}", "FILES#USAGE"


def member_files_pending(org_id: str, member_id: str) -> Key:
    """Bytes of a member's upload slots not yet bound to a message (a counter)."""
    return f"ORG#{org_id}", f"FILES#PENDING#{member_id}"


def org_files_limits(org_id: str) -> Key:
    """The limits the operator set for the organisation's files (else its plan's)."""
    return f"ORG#{org_id}", "FILES#LIMITS"


def blob_expiry(expires_at: int, channel_id: str, blob_id: str) -> Key:
    """When a blob's bytes must go: walked by time by the purge job. Never expired by the store,
    since an expired blob record can no longer be read to find them."""
    return BLOB_EXPIRY_PK, f"{expires_at:012d}#{channel_id}#{blob_id}"


def connection(connection_id: str) -> Key:
    return f"CONN#{connection_id}", META


def call(channel_id: str, call_id: str) -> Key:
    """A call's record, in its channel's partition (who, when; never what they said)."""
    return f"CHAN#{channel_id}", f"{CALL_PREFIX}{call_id}"


def channel_connection(channel_id: str, connection_id: str) -> Key:
    return f"CHAN#{channel_id}", f"{CONNECTION_PREFIX}{connection_id}"


def member_connection(member_id: str, connection_id: str) -> Key:
    return f"MEMBER#{member_id}", f"{CONNECTION_PREFIX}{connection_id}"


def read_cursor(device_id: str, channel_id: str) -> Key:
    return device_partition(device_id), f"{CURSOR_PREFIX}{channel_id}"


def is_device_sk(sk: str) -> bool:
    return DEVICE_INFIX in sk


def record(key: Key, fields: dict[str, object]) -> dict[str, object]:
    """A store item: the key plus the model's fields (``model_dump(mode="json")``)."""
    pk, sk = key
    return {"pk": pk, "sk": sk, **{k: v for k, v in fields.items() if v is not None}}


# -- billing and impact (see chalicelib/services/billing.py for the protocols) ----------------

INVOICE_PREFIX = "INVOICE#"
IMPACT_PREFIX = "IMPACT#"
INVOICE_NO_PK = "INVOICE_NO"
INVOICE_NO_PREFIX = "N#"
DONATIONS_PK = "DONATIONS"
DONATION_PREFIX = "MONTH#"


def org_invoice(org_id: str, month: str) -> Key:
    """The one invoice of an organisation for a month (``YYYY-MM``): draft, then issued."""
    return f"ORG#{org_id}", f"{INVOICE_PREFIX}{month}"


def invoice_number(number: int) -> Key:
    """The claim on one invoice number: put if absent, never changed, points at its invoice."""
    return INVOICE_NO_PK, f"{INVOICE_NO_PREFIX}{number:012d}"


def invoice_pointer() -> Key:
    """A number below which every number is known to be claimed: where claimers start probing."""
    return INVOICE_NO_PK, "POINTER"


def org_impact(org_id: str, month: str) -> Key:
    """Counters of messages and notifications (deliveries) for an organisation and a month."""
    return f"ORG#{org_id}", f"{IMPACT_PREFIX}{month}"


def donation(month: str) -> Key:
    """The month's donation ledger: revenue, parts per partner, trees and the carried remainder."""
    return DONATIONS_PK, f"{DONATION_PREFIX}{month}"


def donation_totals() -> Key:
    """Running totals (trees, donations, impact), moved on once per ledger by a conditional put."""
    return DONATIONS_PK, "TOTAL"


# -- bocage serve's replicas: who they are, the secret they share, the leases of their jobs ----

CLUSTER_PK = "CLUSTER"
REPLICA_PREFIX = "REPLICA#"
LEASE_PREFIX = "LEASE#"


def replica(replica_id: str) -> Key:
    """A running replica and its internal address, kept alive by a heartbeat (TTL)."""
    return CLUSTER_PK, f"{REPLICA_PREFIX}{replica_id}"


def cluster_secret() -> Key:
    """The replicas' shared secret when no BOCAGE_CLUSTER_SECRET is set: written once."""
    return CLUSTER_PK, "SECRET"


def job_lease(job: str, slot: int) -> Key:
    """The claim on one run of a scheduled job (its slot: the interval's number since the epoch)."""
    return CLUSTER_PK, f"{LEASE_PREFIX}{job}#{slot:012d}"


# -- the administrators' audit log -------------------------------------------------------------

AUDIT_PREFIX = "AT#"
AUDIT_RANK_DIGITS = 6  # a million entries in one second of one organisation: never


def audit_partition(org_id: str) -> str:
    """An organisation's audit entries, apart from its own partition: listing members never
    reads them, and they expire on their own (TTL)."""
    return f"AUDIT#{org_id}"


def audit_second(at: int) -> str:
    """The sort-key prefix of the entries written in second ``at``."""
    return f"{AUDIT_PREFIX}{at:012d}#"


def audit_entry(org_id: str, at: int, rank: int, entry_id: str) -> Key:
    """Sorted by time, then by ``rank``, the entry's place among those of its second (0 the
    first written), so the newest come first in one descending query. Entries stored before
    ranks, ``AT#<at>#<entry id>``, still sort by their second."""
    return audit_partition(org_id), f"{audit_second(at)}{rank:0{AUDIT_RANK_DIGITS}d}#{entry_id}"


def audit_rank(sk: str) -> int:
    """The rank an entry's sort key holds; -1 for an entry stored before ranks."""
    parts = sk.split("#")
    return int(parts[2]) if len(parts) == 4 else -1


# -- Web Push: a device's subscription and its coalescing slot -----------------------------------


def push_subscription(device_id: str) -> Key:
    """The device's Web Push subscription, beside its read cursors."""
    return device_partition(device_id), "PUSH"


def push_slot(device_id: str) -> Key:
    """Taken (put if absent, with a TTL) by each push to the device: at most one per slot."""
    return device_partition(device_id), "PUSHED"


# -- "@mention me only": a member's latest choice per channel ------------------------------------

MENTION_CHOICE_PREFIX = "NOTIFY#"


def mention_choice(channel_id: str, member_id: str) -> Key:
    """In the channel's partition, so one prefix query gives the push fan-out every choice."""
    return channel_partition(channel_id), f"{MENTION_CHOICE_PREFIX}{member_id}"
