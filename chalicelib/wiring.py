"""Builds the services from settings: the one place that picks adapters.

The container is built lazily on first use (not at import), so importing the
app stays fast and tests or the local runtime can install their own first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.adapters.clocks import SystemClock
from chalicelib.billing_settings import BillingSettings
from chalicelib.domain.push import DEFAULT_PUSH_SERVICES
from chalicelib.ports import Clock, LocalConnections, Mailer, ObjectStore, Push, Queue, Store, WebPush
from chalicelib.services.audit import AuditLog
from chalicelib.services.authentication import Authenticator
from chalicelib.services.billing import BillingService
from chalicelib.services.call_signalling import CallSignalling
from chalicelib.services.calls import CallService
from chalicelib.services.channels import ChannelService
from chalicelib.services.delivery import INLINE_LIMIT, Delivery
from chalicelib.services.event_bus import EventBus
from chalicelib.services.files import FileService
from chalicelib.services.followers import FollowerService
from chalicelib.services.impact import ImpactService
from chalicelib.services.invitations import InvitationService
from chalicelib.services.lifecycle import DeviceLifecycle
from chalicelib.services.mention_choices import MentionChoices
from chalicelib.services.messaging import MessagingService
from chalicelib.services.notifications import PushNotifications
from chalicelib.services.organisations import OrganisationService
from chalicelib.services.partner_ends import PartnershipEnds
from chalicelib.services.partners import PartnerService
from chalicelib.services.questions import QuestionService
from chalicelib.services.retention import RetentionService
from chalicelib.services.shared_groups import SharedGroups
from chalicelib.settings import Settings


@dataclass
class Container:
    settings: Settings
    store: Store
    clock: Clock
    mailer: Mailer
    push: Push
    auth: Authenticator
    orgs: OrganisationService
    invitations: InvitationService
    channels: ChannelService
    followers: FollowerService
    partners: PartnerService
    partner_ends: PartnershipEnds
    questions: QuestionService
    delivery: Delivery
    messaging: MessagingService
    retention: RetentionService
    billing: BillingService
    impact: ImpactService
    audit: AuditLog
    calls: CallService
    call_signalling: CallSignalling
    notifications: PushNotifications
    mention_choices: MentionChoices
    objects: ObjectStore
    files: FileService


def build(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    push: Push | None = None,
    queue: Queue | None = None,
    billing_settings: BillingSettings | None = None,
    replica: str | None = None,
    web_push: WebPush | None = None,
    objects: ObjectStore | None = None,
    inline_limit: int = INLINE_LIMIT,
    local: LocalConnections | None = None,
) -> Container:
    """``replica``: the ``bocage serve`` replica this process is, written in presence records.
    ``inline_limit``: channels with more connections than this are pushed through the queue;
    ``local``: this process's connections in memory (bocage/local/presence_index.py)."""
    clock = clock or SystemClock()
    store = store or build_store(settings, clock)
    mailer = mailer or build_mailer(settings)
    push = push or build_push(settings)
    queue = queue or build_queue(settings)
    # In dependency order; the event bus carries the organisation's events to channels and
    # sockets, which themselves depend on the organisation service.
    events = EventBus()
    orgs = OrganisationService(store, clock, events)
    notifications = PushNotifications(
        store, clock, web_push or build_web_push(settings), DEFAULT_PUSH_SERVICES + settings.push_services
    )
    notifications.subscribe(events)
    delivery = Delivery(
        store,
        clock,
        push,
        queue,
        inline_limit=inline_limit,
        replica=replica,
        max_per_device=settings.ws_per_device,
        notifier=notifications if notifications.enabled else None,
        local=local,
    )
    shared = SharedGroups(store, orgs)
    channels = ChannelService(store, clock, orgs, delivery, events, shared)
    DeviceLifecycle(channels, delivery).subscribe(events)
    partner_ends = PartnershipEnds(store, channels)
    partner_ends.subscribe(events)
    billing_settings = billing_settings or BillingSettings.from_env()
    impact = ImpactService(store, clock, orgs, billing_settings)
    call_signalling = CallSignalling(store, clock, orgs, channels, delivery, impact)
    call_signalling.subscribe(events)
    audit = AuditLog(store, orgs)
    audit.subscribe(events)
    messaging = MessagingService(store, clock, orgs, channels, delivery, impact, events)
    objects = objects or build_objects(settings, clock)
    files = FileService(store, clock, objects, orgs, channels, messaging)
    files.subscribe(events)
    mention_choices = MentionChoices(store, clock, orgs, channels)
    mention_choices.subscribe(events)
    return Container(
        settings=settings,
        store=store,
        clock=clock,
        mailer=mailer,
        push=push,
        auth=Authenticator(
            store, clock, max_age=settings.token_max_age, operator_keys=settings.operator_keys
        ),
        orgs=orgs,
        invitations=InvitationService(store, clock, orgs, mailer, events, ttl_days=settings.invite_ttl_days),
        channels=channels,
        followers=FollowerService(store, clock, orgs, channels, joins_per_hour=settings.joins_per_tribe_hour),
        partners=PartnerService(store, clock, orgs, events, channels),
        partner_ends=partner_ends,
        questions=QuestionService(store, clock, orgs, channels),
        delivery=delivery,
        messaging=messaging,
        retention=RetentionService(store, clock, orgs, channels, files, shared),
        billing=BillingService(store, clock, orgs, billing_settings),
        impact=impact,
        audit=audit,
        calls=CallService(settings, clock, orgs, channels, build_turn_secret(settings)),
        call_signalling=call_signalling,
        notifications=notifications,
        mention_choices=mention_choices,
        objects=objects,
        files=files,
    )


def build_store(settings: Settings, clock: Clock) -> Store:
    if settings.store == "sqlite":
        from chalicelib.adapters.sqlite_store import SqliteStore

        return SqliteStore(os.path.join(settings.data_dir, "bocage.sqlite3"), clock)
    if settings.store == "dynamodb":
        from chalicelib.adapters.dynamodb_store import DynamoDbStore

        dynamo = DynamoDbStore(
            settings.table, clock, endpoint_url=settings.dynamodb_endpoint, region=settings.region
        )
        if settings.create_table:
            dynamo.ensure_table()
        return dynamo
    raise ValueError(f"BOCAGE_STORE must be 'sqlite' or 'dynamodb', not {settings.store!r}")


def build_objects(settings: Settings, clock: Clock) -> ObjectStore:
    """Where file blobs live: the S3 bucket when one is set, else ``blobs/`` in the data directory
    (served by ``bocage serve`` under /blobs/ with URLs signed by a secret of the data directory)."""
    if settings.bucket:
        from chalicelib.adapters.s3_objects import S3ObjectStore

        return S3ObjectStore(
            settings.bucket, clock, region=settings.region, endpoint_url=settings.s3_endpoint
        )
    from chalicelib.adapters.local_objects import LocalObjectStore

    return LocalObjectStore(settings.data_dir, settings.public_url or "http://localhost:8000", clock)


class UnconfiguredPush:
    """Stands in when no WebSocket endpoint is set: fails loudly only if a push is attempted."""

    def send(self, connection_id: str, data: bytes) -> None:
        raise RuntimeError("BOCAGE_WS_ENDPOINT is not set: cannot push to WebSocket connections")

    def close(self, connection_id: str, code: int = 1000, reason: str = "") -> None:
        self.send(connection_id, b"")


def build_push(settings: Settings) -> Push:
    if not settings.ws_endpoint:
        return UnconfiguredPush()
    from chalicelib.adapters.apigw_push import ApiGatewayPush

    return ApiGatewayPush.for_endpoint(settings.ws_endpoint, settings.region)


def build_web_push(settings: Settings) -> WebPush | None:
    """Web Push when a VAPID key is set (or, on AWS, its SSM parameter named); the key and the
    cryptography load on the first push, not at start."""
    if not (settings.vapid_private_key or settings.vapid_parameter):
        return None
    from chalicelib.adapters.web_push import WebPushSender

    if settings.vapid_private_key:
        return WebPushSender(settings.vapid_private_key, settings.vapid_subject)
    from chalicelib.adapters.ssm_secret import read_secure_parameter

    name, region = str(settings.vapid_parameter), settings.region
    return WebPushSender(lambda: read_secure_parameter(name, region), settings.vapid_subject)


def build_turn_secret(settings: Settings) -> Callable[[], str | None]:
    """The TURN server's shared secret: from the settings, or on AWS its SSM parameter, read on
    the first call."""
    if settings.turn_secret or not settings.turn_secret_parameter:
        return lambda: settings.turn_secret
    from chalicelib.adapters.ssm_secret import cached_secure_parameter

    return cached_secure_parameter(settings.turn_secret_parameter, settings.region)


def build_queue(settings: Settings) -> Queue | None:
    """SQS on AWS when configured; None means every fan-out is pushed inline."""
    if not settings.fanout_queue_url:
        return None
    import boto3

    from chalicelib.adapters.sqs_queue import SqsQueue

    return SqsQueue(boto3.client("sqs", region_name=settings.region), settings.fanout_queue_url)


def build_mailer(settings: Settings) -> Mailer:
    if settings.mailer == "console":
        from chalicelib.adapters.console_mailer import ConsoleMailer

        return ConsoleMailer(os.path.join(settings.data_dir, "outbox"), sender=settings.mail_from)
    if settings.mailer == "smtp":
        from chalicelib.adapters.smtp_mailer import SmtpMailer

        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if settings.mailer == "ses":
        import boto3

        from chalicelib.adapters.ses_mailer import SesMailer

        return SesMailer(settings.mail_from, boto3.client("ses", region_name=settings.region))
    raise ValueError(f"BOCAGE_MAILER must be 'console', 'smtp' or 'ses', not {settings.mailer!r}")


_lock = threading.Lock()
_current: Container | None = None


def container() -> Container:
    global _current
    with _lock:
        if _current is None:
            _current = build(Settings.from_env())
        return _current


def current() -> Container | None:
    """The container if one is built or installed, without building one."""
    with _lock:
        return _current


def use(replacement: Container | None) -> None:
    """Install a container (tests, the local runtime); None rebuilds from the environment."""
    global _current
    with _lock:
        _current = replacement


def describe(c: Container) -> str:
    """What is wired, for start-up messages: adapters and places, never secrets."""
    s = c.settings
    if s.store == "dynamodb":
        where = f"DynamoDbStore, table {s.table} at {s.dynamodb_endpoint or 'AWS ' + s.region}"
    else:
        where = f"SqliteStore in {os.path.join(s.data_dir, 'bocage.sqlite3')}"
    return f"{where}; {type(c.mailer).__name__}"
