"""The ``bocage`` command (also ``python -m bocage``).

Every command takes ``--json`` (one JSON document on stdout, errors included)
and ``--profile DIR`` (the device's keys and settings). Command names and JSON
keys are a public interface: scripts depend on them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import mimetypes
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from bocage.client.api import ApiError, BocageClient
from bocage.client.crypto import CryptoError
from bocage.client.messenger import Messenger
from bocage.client.poster import poster_pdf, poster_svg
from bocage.client.profile import DeviceKeys, OperatorKey, Profile
from bocage.client.trust import MembershipRefused, TrustError, activate, join
from chalicelib.activation_qr import qr_terminal, write_qr
from chalicelib.domain.activation_link import TRUST_PARAMS, parse_activation
from chalicelib.domain.followers import parse_join_url
from chalicelib.domain.statements import MAX_HISTORY_DAYS
from chalicelib.errors import BocageError

if TYPE_CHECKING:
    from bocage.client.files import HttpTransfer

DEFAULT_PROFILE = os.environ.get("BOCAGE_PROFILE", str(Path.home() / ".bocage" / "default"))


class CliError(Exception):
    """A usage problem the user can fix, reported without a traceback."""


Result = Mapping[str, Any]
Command = Callable[[argparse.Namespace], Result]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _common() -> argparse.ArgumentParser:
    """Options accepted before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document")
    common.add_argument("--profile", default=argparse.SUPPRESS, help="profile directory (keys and settings)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="bocage", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (
        register_serve_and_jobs,
        register_operator_and_org,
        register_identity,
        register_messaging,
        register_polls,
        register_followers,
        register_partners,
        register_billing_and_plan,
        register_retention,
        register_audit,
        register_backup,
        register_calls,
    ):
        register(sub, common)
    return parser


def register_serve_and_jobs(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the API on this machine (embedded store)",
        description="Serve the REST API, the web app (/app/) and WebSockets (/ws) on one port, on the "
        "embedded SQLite store in --data or the store the environment names (BOCAGE_STORE). Run as "
        "many replicas as you like on one DynamoDB-API store: each finds the others through it, and a "
        "message reaches every client whichever replica holds its connection.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--data", default=None, help="data directory (default: BOCAGE_DATA_DIR or .bocage-data)"
    )
    serve.add_argument("--org-name", default="Bocage", help="name of the organisation made on first start")
    serve.set_defaults(func=cmd_serve)

    jobs = sub.add_parser("jobs", parents=[common], help="scheduled work, for cron (sovereign deployments)")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_run = jobs_sub.add_parser(
        "run", parents=[common], help="run a scheduled job once on the store the environment names"
    )
    jobs_run.add_argument("job", choices=["retention", "billing"])
    jobs_run.add_argument("--budget", type=float, default=240, metavar="SECONDS", help="stop after this long")
    jobs_run.set_defaults(func=cmd_jobs_run)


def register_operator_and_org(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    org = sub.add_parser("org", parents=[common], help="organisations (operator; rename: admins)")
    org_sub = org.add_subparsers(dest="org_command", required=True)
    create = org_sub.add_parser(
        "create", parents=[common], help="create an organisation and its owner's invitation"
    )
    create.add_argument("name")
    create.add_argument("--plan", choices=["free", "pilot", "pro"], default="free")
    create.add_argument("--owner-name", default="Owner")
    where = create.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="write the embedded store in DIR directly")
    where.add_argument("--server", help="ask a running server (needs an operator key)")
    create.add_argument(
        "--operator-key",
        default=os.environ.get("BOCAGE_OPERATOR_KEY_FILE"),
        help="operator private key file (default: BOCAGE_OPERATOR_KEY_FILE)",
    )
    create.add_argument("--public-url", default=None, help="API URL put in activation links (with --data)")
    create.set_defaults(func=cmd_org_create)
    rename = org_sub.add_parser("rename", parents=[common], help="rename your organisation (admins)")
    rename.add_argument("name")
    rename.set_defaults(func=cmd_org_rename)
    photos = org_sub.add_parser(
        "photos", parents=[common], help="the longest side of the photos your devices send (admins)"
    )
    photos.add_argument("max_side", type=int, help="pixels, 480 to 4096 (1600 by default)")
    photos.set_defaults(func=cmd_org_photos)

    operator = sub.add_parser("operator", parents=[common], help="operator credentials")
    op_sub = operator.add_subparsers(dest="operator_command", required=True)
    keygen = op_sub.add_parser("keygen", parents=[common], help="make an operator key pair")
    keygen.add_argument("file", help="where to write the private key (mode 0600)")
    keygen.set_defaults(func=cmd_operator_keygen)


def register_identity(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    activate = sub.add_parser("activate", parents=[common], help="activate this device with a code or URL")
    activate.add_argument("code_or_url")
    activate.add_argument("--server", default=None, help="API URL, when the code comes without one")
    activate.add_argument(
        "--name", default=None, help="your name as others will see it, if the link does not name you"
    )
    activate.add_argument("--device-name", default=socket.gethostname())
    for name, what in (
        ("org", "organisation id"),
        ("member", "member id"),
        ("ticket", "ticket secret"),
        ("root", "root fingerprint"),
        ("ik", "identity key (device links)"),
    ):
        activate.add_argument(f"--{name}", default=None, help=f"the URL fragment's {what}, with a bare code")
    activate.set_defaults(func=cmd_activate)

    invite = sub.add_parser("invite", parents=[common], help="invite a person (admins)")
    invite.add_argument("--name", required=True)
    invite.add_argument("--email", default=None)
    invite.add_argument("--role", choices=["member", "admin", "guest"], default="member")
    invite.add_argument("--qr", default=None, help="write the activation QR code to FILE.png or FILE.svg")
    invite.set_defaults(func=cmd_invite)

    link = sub.add_parser("link-device", parents=[common], help="a code to activate another device of yours")
    link.add_argument("--qr", default=None, help="write the activation QR code to FILE.png or FILE.svg")
    link.set_defaults(func=cmd_link_device)

    members = sub.add_parser("members", parents=[common], help="list the organisation's members")
    members.set_defaults(func=cmd_members)

    revoke = sub.add_parser(
        "revoke", parents=[common], help="revoke a device (d_...) or remove a member (m_...)"
    )
    revoke.add_argument("target", metavar="MEMBER_OR_DEVICE")
    revoke.set_defaults(func=cmd_revoke)

    role = sub.add_parser("role", parents=[common], help="set a member's role (admins)")
    role.add_argument("member")
    role.add_argument("role", choices=["guest", "member", "admin", "owner"])
    role.set_defaults(func=cmd_role)

    whoami = sub.add_parser("whoami", parents=[common], help="this device, its member and organisation")
    whoami.set_defaults(func=cmd_whoami)

    verify = sub.add_parser(
        "verify",
        parents=[common],
        help="show a member's safety number, or confirm it (--confirm) to mark them verified",
        description="Compare the safety number with the member (in person, by phone, or by scanning the QR "
        "payload). --confirm marks them verified on this device; run by an admin on a member vouched by "
        "the server only (an e-mail invitee), it also endorses them for the whole organisation.",
    )
    verify.add_argument("member")
    verify.add_argument("--confirm", default=None, metavar="NUMBER", help="the number they read out")
    verify.set_defaults(func=cmd_verify)

    endorse = sub.add_parser(
        "endorse", parents=[common], help="vouch for an e-mail invitee as an admin, without verifying"
    )
    endorse.add_argument("member")
    endorse.set_defaults(func=cmd_endorse)


def register_messaging(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """Channels, their membership, and sending, reading and listening."""
    for kind, what in (
        ("tribe", "a broadcast channel: authors post, members read"),
        ("group", "everyone posts"),
    ):
        parser_kind = sub.add_parser(kind, parents=[common], help=f"{kind}s: {what}")
        kind_sub = parser_kind.add_subparsers(dest=f"{kind}_command", required=True)
        create_kind = kind_sub.add_parser("create", parents=[common], help=f"create a {kind}")
        create_kind.add_argument("name")
        create_kind.set_defaults(func=cmd_channel_create, kind=kind)
        if kind == "tribe":
            _register_public_tribes(kind_sub, create_kind, common)

    channel = sub.add_parser("channel", parents=[common], help="channel membership")
    channel_sub = channel.add_subparsers(dest="channel_command", required=True)
    add = channel_sub.add_parser("add", parents=[common], help="add a member (or change their role)")
    add.add_argument("channel")
    add.add_argument("member", help="a member id, or a partner's member's contact card link")
    add.add_argument("--role", choices=["author", "member"], default="member")
    add.set_defaults(func=cmd_channel_add)
    remove = channel_sub.add_parser("remove", parents=[common], help="remove a member; the channel re-keys")
    remove.add_argument("channel")
    remove.add_argument("member")
    remove.set_defaults(func=cmd_channel_remove)
    log = channel_sub.add_parser(
        "log", parents=[common], help="the channel's signed membership history (who added whom)"
    )
    log.add_argument("channel")
    log.set_defaults(func=cmd_channel_log)

    direct = sub.add_parser(
        "dm", parents=[common], help="the one-to-one conversation with a member (found again, or created)"
    )
    direct.add_argument("member")
    direct.set_defaults(func=cmd_dm)

    channels = sub.add_parser("channels", parents=[common], help="my channels, with unread counts")
    channels.set_defaults(func=cmd_channels)
    _register_send_and_read(sub, common)

    listen = sub.add_parser("listen", parents=[common], help="print messages as they arrive (JSON lines)")
    listen.add_argument("--count", type=int, default=None, help="exit after N messages")
    listen.add_argument("--timeout", type=float, default=None, help="exit after S seconds")
    listen.set_defaults(func=cmd_listen)


def _register_public_tribes(
    tribe_sub: Subparsers, create: argparse.ArgumentParser, common: argparse.ArgumentParser
) -> None:
    """Public tribes and their followers (docs/protocol.md, 16)."""
    publish = tribe_sub.add_parser(
        "publish", parents=[common], help="make a tribe public: a new join link (the old one stops)"
    )
    publish.add_argument("channel")
    publish.set_defaults(func=cmd_tribe_publish)
    for parser in (create, publish):
        parser.add_argument("--cap", type=int, default=None, help="at most N followers through this link")
        parser.add_argument("--days", type=int, default=365, help="the link's lifetime (default 365)")
    create.add_argument("--public", action="store_true", help="publish it at once with a join link")
    link = tribe_sub.add_parser("link", parents=[common], help="a public tribe's join link and followers")
    link.add_argument("channel")
    link.set_defaults(func=cmd_tribe_link)
    revoke = tribe_sub.add_parser("revoke-link", parents=[common], help="stop the join link (410)")
    revoke.add_argument("channel")
    revoke.set_defaults(func=cmd_tribe_revoke_link)
    poster = tribe_sub.add_parser("poster", parents=[common], help="an A4 poster with the join QR code")
    poster.add_argument("channel")
    poster.add_argument("--out", required=True, help="FILE.svg or FILE.pdf")
    poster.set_defaults(func=cmd_tribe_poster)
    history = tribe_sub.add_parser(
        "history", parents=[common], help="how many recent days new followers read (0: from joining)"
    )
    history.add_argument("channel")
    history.add_argument(
        "--days", type=int, default=None, help=f"0 to {MAX_HISTORY_DAYS}; without it, show the choice"
    )
    history.set_defaults(func=cmd_tribe_history)


def register_followers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    join = sub.add_parser("join", parents=[common], help="follow a public tribe from its join link")
    join.add_argument("join_url")
    join.add_argument("--name", required=True, help="the name you choose to be shown under")
    join.add_argument("--device-name", default=socket.gethostname()[:120])
    join.set_defaults(func=cmd_join)
    follower = sub.add_parser("follower", parents=[common], help="this follower device")
    follower_sub = follower.add_subparsers(dest="follower_command", required=True)
    leave = follower_sub.add_parser("leave", parents=[common], help="stop following; device and keys deleted")
    leave.set_defaults(func=cmd_follower_leave)
    # Questions to the town hall (docs/protocol.md, 20).
    question = sub.add_parser(
        "question", parents=[common], help="ask the managers of a public tribe you follow, privately"
    )
    question.add_argument("channel")
    question.add_argument("text")
    question.set_defaults(func=cmd_question)
    listed = sub.add_parser(
        "questions", parents=[common], help="a tribe's questions (managers), or your own (a follower)"
    )
    listed.add_argument("channel")
    listed.set_defaults(func=cmd_questions)
    answer = sub.add_parser("answer", parents=[common], help="answer a follower's question (managers)")
    answer.add_argument("channel")
    answer.add_argument("question_id")
    answer.add_argument("text")
    answer.add_argument("--publish", action="store_true", help="also post the answer in the tribe")
    answer.set_defaults(func=cmd_answer)


def register_partners(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """Partner organisations on the same deployment (docs/protocol.md, 22); admins."""
    partner = sub.add_parser("partner", parents=[common], help="partner organisations (admins)")
    partner_sub = partner.add_subparsers(dest="partner_command", required=True)
    invite = partner_sub.add_parser(
        "invite", parents=[common], help="a code and link for another organisation"
    )
    invite.add_argument("--qr", metavar="FILE", help="also write the link's QR code (.png or .svg)")
    accept = partner_sub.add_parser(
        "accept", parents=[common], help="accept another organisation's invitation"
    )
    accept.add_argument("code_or_url")
    for parser in (invite, accept):
        parser.add_argument(
            "--allow-tribes", action="store_true", help="let the partner's members into our tribes too"
        )
    invite.set_defaults(func=cmd_partner_invite)
    accept.set_defaults(func=cmd_partner_accept)
    end = partner_sub.add_parser("end", parents=[common], help="end a partnership (either side)")
    end.add_argument("org_id")
    end.set_defaults(func=cmd_partner_end)
    card = partner_sub.add_parser(
        "card", parents=[common], help="my contact card: the link a partner's group manager adds me with"
    )
    card.add_argument("--app-url", help="the web app's address the link opens (default: SERVER/app)")
    card.add_argument("--qr", metavar="FILE", help="also write the link's QR code (.png or .svg)")
    card.set_defaults(func=cmd_partner_card)
    partners = sub.add_parser(
        "partners", parents=[common], help="our partner organisations; countersigns accepted invitations"
    )
    partners.add_argument("--no-confirm", action="store_true", help="list only, sign nothing")
    partners.set_defaults(func=cmd_partners)


def _register_send_and_read(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    send = sub.add_parser("send", parents=[common], help="send an encrypted message (and a file)")
    send.add_argument("channel")
    send.add_argument("text", nargs="?", default="")
    send.add_argument("--file", default=None, metavar="PATH", help="attach a photo or document")
    send.add_argument("--type", default=None, metavar="MIME", help="the file's media type (guessed)")
    send.add_argument(
        "--original", action="store_true", help="send a photo as it is (not resized, metadata kept)"
    )
    send.add_argument("--reply-to", default=None, metavar="MESSAGE_ID", help="quote a message")
    send.add_argument(
        "--mention",
        action="append",
        default=[],
        metavar="MEMBER_ID",
        help="mention a member of the channel (repeatable; their name is written in the text as @Name)",
    )
    send.add_argument(
        "--live", action="store_true", help="send over a WebSocket connection and wait for its ack"
    )
    send.set_defaults(func=cmd_send)

    download = sub.add_parser("download", parents=[common], help="fetch and decrypt a message's file")
    download.add_argument("channel")
    download.add_argument("message_id")
    download.add_argument("--out", default=".", metavar="DIR", help="directory to write it in")
    download.set_defaults(func=cmd_download)
    for transfers in (send, download):
        transfers.add_argument(
            "--progress",
            choices=["auto", "on", "off"],
            default="auto",
            help="a progress bar on stderr for the file's bytes (auto: when stderr is a terminal)",
        )

    read = sub.add_parser("read", parents=[common], help="decrypt a channel's messages since a cursor")
    read.add_argument("channel")
    read.add_argument("--since", type=int, default=0, metavar="CURSOR")
    read.add_argument("--limit", type=int, default=100)
    read.set_defaults(func=cmd_read)

    seen = sub.add_parser("seen", parents=[common], help='who has read a message ("vu par N / M")')
    seen.add_argument("channel")
    seen.add_argument("message_id")
    seen.set_defaults(func=cmd_seen)

    notify = sub.add_parser(
        "notify", parents=[common], help="push notifications of a channel: all or @mentions only"
    )
    notify.add_argument("channel")
    notify_mode = notify.add_mutually_exclusive_group(required=True)
    notify_mode.add_argument("--mentions-only", dest="mentions_only", action="store_true")
    notify_mode.add_argument("--all", dest="mentions_only", action="store_false")
    notify.set_defaults(func=cmd_notify)

    react = sub.add_parser("react", parents=[common], help="react to a message with an emoji")
    react.add_argument("channel")
    react.add_argument("message_id")
    react.add_argument("emoji")
    react.add_argument("--remove", action="store_true")
    react.set_defaults(func=cmd_react)

    edit = sub.add_parser("edit", parents=[common], help="replace the text of one of your messages")
    edit.add_argument("channel")
    edit.add_argument("message_id")
    edit.add_argument("text")
    edit.set_defaults(func=cmd_edit)

    delete = sub.add_parser("delete", parents=[common], help="delete a message for everyone")
    delete.add_argument("channel")
    delete.add_argument("message_id")
    delete.set_defaults(func=cmd_delete)


def register_polls(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    poll = sub.add_parser("poll", parents=[common], help="encrypted polls")
    poll_sub = poll.add_subparsers(dest="poll_command", required=True)
    poll_create = poll_sub.add_parser("create", parents=[common], help="ask a question (2 to 20 options)")
    poll_create.add_argument("channel")
    poll_create.add_argument("question")
    poll_create.add_argument("options", nargs="+", metavar="OPTION")
    poll_create.add_argument("--multiple", action="store_true", help="several choices per voter")
    poll_create.add_argument(
        "--show-voters", action="store_true", help="results name who chose each option (else totals only)"
    )
    poll_create.add_argument("--closes", default=None, metavar="DURATION", help="close after 30m, 2h, 7d...")
    poll_create.set_defaults(func=cmd_poll_create)
    poll_vote = poll_sub.add_parser("vote", parents=[common], help="vote (a later vote replaces yours)")
    poll_vote.add_argument("channel")
    poll_vote.add_argument("poll_id")
    poll_vote.add_argument("choices", nargs="+", type=int, metavar="OPTION_INDEX")
    poll_vote.set_defaults(func=cmd_poll_vote)
    poll_close = poll_sub.add_parser("close", parents=[common], help="close a poll (its author or a manager)")
    poll_close.add_argument("channel")
    poll_close.add_argument("poll_id")
    poll_close.set_defaults(func=cmd_poll_close)
    poll_results = poll_sub.add_parser("results", parents=[common], help="tally the votes, on this device")
    poll_results.add_argument("channel")
    poll_results.add_argument("poll_id")
    poll_results.set_defaults(func=cmd_poll_results)


def register_billing_and_plan(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    billing = sub.add_parser("billing", parents=[common], help="the monthly billing job (operator)")
    billing_sub = billing.add_subparsers(dest="billing_command", required=True)
    billing_run = billing_sub.add_parser("run", parents=[common], help="bill a month (default: the last one)")
    billing_run.add_argument("--month", default=None, metavar="YYYY-MM")
    billing_run.add_argument("--dry-run", action="store_true", help="compute only (this month: to date)")
    _data_or_server(billing_run, operator=True)
    billing_run.set_defaults(func=cmd_billing_run)

    plan = sub.add_parser("plan", parents=[common], help="the organisation's plan (admins)")
    plan_sub = plan.add_subparsers(dest="plan_command", required=True)
    plan_show = plan_sub.add_parser(
        "show", parents=[common], help="plan, pilot dates, month-to-date estimate"
    )
    plan_show.set_defaults(func=cmd_plan_show)
    plan_end = plan_sub.add_parser("pilot-end", parents=[common], help="what the pilot becomes at its end")
    plan_end.add_argument("choice", choices=["convert", "suspend"])
    plan_end.set_defaults(func=cmd_plan_pilot_end)

    invoices = sub.add_parser("invoices", parents=[common], help="the organisation's invoices (admins)")
    invoices.set_defaults(func=cmd_invoices)
    invoice = sub.add_parser("invoice", parents=[common], help="one invoice (admins)")
    invoice.add_argument("month", metavar="YYYY-MM")
    invoice.add_argument("--csv", action="store_true")
    invoice.set_defaults(func=cmd_invoice)
    report = sub.add_parser("report", parents=[common], help="the pilot report (admins)")
    report.add_argument("--csv", action="store_true")
    report.set_defaults(func=cmd_report)
    impact = sub.add_parser("impact", parents=[common], help="trees planted and CO2e avoided (public)")
    _data_or_server(impact, operator=False)
    impact.set_defaults(func=cmd_impact)


def register_retention(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    retention = sub.add_parser("retention", parents=[common], help="how long messages are kept")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    set_retention = retention_sub.add_parser(
        "set",
        parents=[common],
        help="set the organisation's retention (admins) or a channel's (its managers)",
    )
    set_retention.add_argument("duration", help="90d, 12w, 3m or 1y (1 day to 5 years)")
    set_retention.add_argument("--channel", default=None)
    set_retention.set_defaults(func=cmd_retention_set)
    show_retention = retention_sub.add_parser("show", parents=[common], help="show the retention in force")
    show_retention.add_argument("--channel", default=None)
    show_retention.set_defaults(func=cmd_retention_show)


def register_audit(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser(
        "audit", parents=[common], help="the administrators' audit log, newest first (owners and admins)"
    )
    audit.add_argument("--limit", type=int, default=100, help="at most this many entries (default 100)")
    audit.add_argument(
        "--keep",
        default=None,
        metavar="DURATION",
        help="instead: keep new entries this long (owners; 30d-5y)",
    )
    audit.set_defaults(func=cmd_audit)


def register_calls(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    call = sub.add_parser("call", parents=[common], help="calls in a group or direct conversation (pro plan)")
    call_sub = call.add_subparsers(dest="call_command", required=True)
    credentials = call_sub.add_parser(
        "credentials", parents=[common], help="ICE servers and short-lived TURN credentials for a call"
    )
    credentials.add_argument("channel")
    credentials.set_defaults(func=cmd_call_credentials)


def register_backup(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the embedded store to a file, safely while `bocage serve` runs",
    )
    backup.add_argument("--data", required=True, help="the data directory `bocage serve` uses")
    backup.add_argument("--out", required=True, help="the backup file to write (created 0600)")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", parents=[common], help="put a backup in place as the embedded store (server stopped)"
    )
    restore.add_argument("file", help="a file written by `bocage backup`")
    restore.add_argument("--data", required=True, help="the data directory to restore into")
    restore.add_argument("--force", action="store_true", help="replace a store that already holds items")
    restore.set_defaults(func=cmd_restore)


def _data_or_server(parser: argparse.ArgumentParser, *, operator: bool) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="use the embedded store in DIR directly")
    where.add_argument("--server", help="ask a running server")
    if operator:
        parser.add_argument("--operator-key", default=os.environ.get("BOCAGE_OPERATOR_KEY_FILE"))


# -- commands -------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> Result:
    from bocage.local.serve import serve

    serve(args.host, args.port, args.data, args.org_name)
    return {}


def cmd_backup(args: argparse.Namespace) -> Result:
    from bocage.local.backup import backup

    return backup(args.data, args.out)


def cmd_restore(args: argparse.Namespace) -> Result:
    from bocage.local.backup import restore

    return restore(args.file, args.data, force=args.force)


def cmd_jobs_run(args: argparse.Namespace) -> Result:
    """What EventBridge runs on AWS: the same functions, on the store the settings describe."""
    from bocage.local import admin

    return admin.run_job(args.job, args.budget)


def cmd_org_create(args: argparse.Namespace) -> Result:
    if args.data:
        from bocage.local import admin

        return admin.create_org(args.data, args.name, args.plan, args.owner_name, args.public_url)
    return _operator_client(args, "; see README").create_org(args.name, args.plan, args.owner_name)


def cmd_operator_keygen(args: argparse.Namespace) -> Result:
    if Path(args.file).exists():
        raise CliError(f"{args.file} exists; remove it first to make a new key")
    key = OperatorKey.generate()
    key.save(args.file)
    return {"key_file": args.file, "public_key": key.public_key, "key_id": key.key_id}


def cmd_activate(args: argparse.Namespace) -> Result:
    """Retryable: the keys are saved before the call, and a profile without profile.json reuses them.

    If the reply is lost after the server consumed the code, running the same command again
    presents the same device key, which the server recognises as a retry (201, not 409).
    """
    profile = _profile(args)
    if profile.exists:
        raise CliError(f"{profile.dir} already holds an activated device; use another --profile")
    target = parse_activation(args.code_or_url)
    server = args.server or target.server
    if not server:
        raise CliError("this code carries no server address: add --server URL")
    client = BocageClient(server)  # checks the URL before any key is made
    extra = {name: getattr(args, name) for name in TRUST_PARAMS if getattr(args, name, None)}
    target = replace(target, **extra)
    keys = _pending_keys(profile)
    now = int(time.time())
    result = activate(
        client, profile, target, keys, device_name=args.device_name, display_name=args.name, now=now
    )
    warnings = result.pop("warnings")
    profile.save_info({"server": server.rstrip("/"), **result})
    return {**result, "server": server.rstrip("/"), "profile": str(profile.dir), "warnings": warnings}


def _pending_keys(profile: Profile) -> DeviceKeys:
    """Keys saved by an activation that never got its reply, or new ones, saved at once."""
    if (profile.dir / "sign.key").exists() and (profile.dir / "box.key").exists():
        return profile.keys()
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    return keys


def cmd_invite(args: argparse.Namespace) -> Result:
    """The URL (and QR code) carries the ticket's secret: hand it over in person or privately."""
    result = _messenger(args).trust.invite(args.name, role=args.role, email=args.email)
    return _with_qr(result, args.qr)


def cmd_link_device(args: argparse.Namespace) -> Result:
    return _with_qr(_messenger(args).trust.link_device(), args.qr)


def cmd_members(args: argparse.Namespace) -> Result:
    """Every member, with how this device sees them (certified, verified, vouched by the server only),
    then the members of active partners met in shared groups, as "Name (Organisation)" (22.6)."""
    messenger = _messenger(args)
    members = messenger.client.members()
    messenger.trust.view(refresh=True)
    listed = [{**m, **messenger.trust.standing(m["member_id"])} for m in members]
    return {"members": listed + messenger.trust.partner_members()}


def cmd_revoke(args: argparse.Namespace) -> Result:
    if args.target.startswith("m_"):
        return {"member": _messenger(args).trust.remove(args.target)}
    if args.target.startswith("d_"):
        return {"device": _messenger(args).trust.revoke(args.target)}
    raise CliError("MEMBER_OR_DEVICE must be a member id (m_...) or a device id (d_...)")


def cmd_role(args: argparse.Namespace) -> Result:
    return {"member": _messenger(args).trust.set_role(args.member, args.role)}


def cmd_verify(args: argparse.Namespace) -> Result:
    trust = _messenger(args).trust
    if args.confirm is None:
        return trust.safety(args.member)
    confirmed = trust.confirm(args.member, args.confirm)
    endorsed = False
    if confirmed["vouched_by_server_only"] and trust.view().role(trust.member_id) in ("admin", "owner"):
        trust.endorse(args.member)
        endorsed = True
    return {**confirmed, "endorsed": endorsed}


def cmd_endorse(args: argparse.Namespace) -> Result:
    return _messenger(args).trust.endorse(args.member)


def cmd_org_rename(args: argparse.Namespace) -> Result:
    return _client(args).rename_org(args.name)


def cmd_org_photos(args: argparse.Namespace) -> Result:
    return _client(args).request("PUT", "/org/photos", {"max_side": args.max_side})


def cmd_whoami(args: argparse.Namespace) -> Result:
    return _client(args).whoami()


def cmd_channel_create(args: argparse.Namespace) -> Result:
    messenger = _messenger(args)
    channel = messenger.create_channel(args.kind, args.name)
    if not getattr(args, "public", False):
        return channel
    published = messenger.publish(channel["channel_id"], cap=args.cap, days=args.days)
    return {**channel, "join_url": published["join_url"], "link_id": published["link_id"]}


# -- public tribes and followers (docs/protocol.md, 16) -------------------------------------------


def cmd_tribe_publish(args: argparse.Namespace) -> Result:
    return _messenger(args).publish(args.channel, cap=args.cap, days=args.days)


def cmd_tribe_link(args: argparse.Namespace) -> Result:
    messenger = _messenger(args)
    status = messenger.client.join_link(args.channel)
    return {**status, "join_url": messenger.profile.join_links().get(args.channel)}


def cmd_tribe_history(args: argparse.Namespace) -> Result:
    """Set (managers) or show the tribe's verified "last N days" choice (section 23)."""
    messenger = _messenger(args)
    if args.days is None:
        days = messenger.recent_history(args.channel, force=True)
        return {"channel_id": args.channel, "days": days, "warnings": messenger.trust.take_warnings()}
    if not 0 <= args.days <= MAX_HISTORY_DAYS:
        raise CliError(f"--days must be 0 to {MAX_HISTORY_DAYS}")
    return {
        **messenger.set_recent_history(args.channel, args.days),
        "warnings": messenger.trust.take_warnings(),
    }


def cmd_tribe_revoke_link(args: argparse.Namespace) -> Result:
    return _messenger(args).client.revoke_join_link(args.channel)


def cmd_tribe_poster(args: argparse.Namespace) -> Result:
    messenger = _messenger(args)
    url = messenger.profile.join_links().get(args.channel)
    if url is None:
        raise CliError("this device published no join link for that tribe: run 'bocage tribe publish' first")
    names = {c["channel_id"]: c["name"] for c in messenger.channels()}
    if args.channel not in names:
        raise CliError(f"no tribe {args.channel} among your channels")
    org_name = str(messenger.client.whoami()["org"]["name"])
    out = Path(args.out)
    if out.suffix.lower() == ".pdf":
        out.write_bytes(poster_pdf(org_name, names[args.channel], url))
    elif out.suffix.lower() == ".svg":
        out.write_text(poster_svg(org_name, names[args.channel], url), encoding="utf-8")
    else:
        raise CliError("--out must end in .svg or .pdf")
    return {"channel_id": args.channel, "poster": str(out), "join_url": url}


def cmd_join(args: argparse.Namespace) -> Result:
    """Retryable like activation: the keys are saved first, and the server recognises them."""
    profile = _profile(args)
    name = args.name.strip()
    if not 1 <= len(name) <= 120:
        raise CliError("--name must be 1 to 120 characters")
    target = parse_join_url(args.join_url)
    if profile.exists:
        messenger = _messenger(args)
        if not messenger.trust.is_follower:
            raise CliError(f"{profile.dir} already holds an activated device; use another --profile")
        try:  # a follower's device follows another public tribe of its organisation
            result = messenger.follow(target, name, device_name=args.device_name)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        return {**result, "member_id": result["follower_id"], "profile": str(profile.dir), "warnings": []}
    client = BocageClient(target.server)
    keys = _pending_keys(profile)
    result = join(
        client, profile, target, keys, display_name=name, device_name=args.device_name, now=int(time.time())
    )
    warnings = result.pop("warnings")
    profile.save_info({"server": target.server, **result})
    return {**result, "server": target.server, "profile": str(profile.dir), "warnings": warnings}


def cmd_question(args: argparse.Namespace) -> Result:
    try:
        return _messenger(args).ask(args.channel, args.text)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def cmd_questions(args: argparse.Namespace) -> Result:
    messenger = _messenger(args)
    found = messenger.questions(args.channel)
    return {"channel_id": args.channel, "questions": found, "warnings": messenger.trust.take_warnings()}


def cmd_answer(args: argparse.Namespace) -> Result:
    try:
        return _messenger(args).answer(args.channel, args.question_id, args.text, publish=args.publish)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def cmd_follower_leave(args: argparse.Namespace) -> Result:
    profile = _profile(args)
    result = dict(_client(args).leave_as_follower())
    profile.forget()
    return {**result, "profile_deleted": str(profile.dir)}


# -- partner organisations (docs/protocol.md, 22) -------------------------------------------------


def cmd_partner_invite(args: argparse.Namespace) -> Result:
    """The code and link carry the ticket's secret: hand them to the other admin privately."""
    return _with_qr(_messenger(args).partners.invite(allow_tribes=args.allow_tribes), args.qr, "url")


def cmd_partner_accept(args: argparse.Namespace) -> Result:
    return _messenger(args).partners.accept(args.code_or_url, allow_tribes=args.allow_tribes)


def cmd_partner_card(args: argparse.Namespace) -> Result:
    """A member's card for partners (22.6): no secret in it, hand it over any channel."""
    return _with_qr(_messenger(args).partners.card(args.app_url), args.qr, "url")


def cmd_partners(args: argparse.Namespace) -> Result:
    return {"partners": _messenger(args).partners.listing(confirm=not args.no_confirm)}


def cmd_partner_end(args: argparse.Namespace) -> Result:
    return _messenger(args).partners.end(args.org_id)


def cmd_channel_add(args: argparse.Namespace) -> Result:
    """MEMBER is a member id, or a partner's member's contact card link, checked first (22.6)."""
    messenger = _messenger(args)
    member = args.member
    if "#/card?" in member:
        member = messenger.partners.check_card(member)["member_id"]
    return messenger.add_member(args.channel, member, args.role)


def cmd_channel_remove(args: argparse.Namespace) -> Result:
    return _messenger(args).remove_member(args.channel, args.member)


def cmd_channel_log(args: argparse.Namespace) -> Result:
    return _messenger(args).trust.events(args.channel)


def cmd_dm(args: argparse.Namespace) -> Result:
    return _messenger(args).open_direct(args.member)


def cmd_channels(args: argparse.Namespace) -> Result:
    return {"channels": _messenger(args).channels()}


def cmd_send(args: argparse.Namespace) -> Result:
    if args.file is not None:
        return _send_file(args)
    if not args.text:
        raise CliError("nothing to send: give a text, a --file, or both")
    messenger = _messenger(args)
    messenger.channels()  # what the listing calls a direct conversation is checked before sending
    options: dict[str, Any] = {"reply_to": args.reply_to, "mentions": args.mention}
    if not args.live:
        return messenger.send_text(args.channel, args.text, **options)
    with messenger.live():
        return messenger.send_text(args.channel, args.text, **options, live=True)


# -- files (docs/protocol.md, section 18) -------------------------------------------------------


def _late_text(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """``send CHANNEL --file PATH TEXT``: argparse leaves a positional after an option unparsed."""
    if not extra:
        return
    if (
        getattr(args, "command", None) == "send"
        and not args.text
        and len(extra) == 1
        and not extra[0].startswith("-")
    ):
        args.text = extra[0]
        return
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def _send_file(args: argparse.Namespace) -> Result:
    from bocage.client.files import send_file

    if args.live or args.reply_to or args.mention:
        raise CliError("--file is sent over REST, without --live, --reply-to or --mention")
    path = Path(args.file)
    mime = (args.type or mimetypes.guess_type(path.name)[0] or "application/octet-stream").lower()
    data, name = path.read_bytes(), path.name
    original = len(data)
    from bocage.client.images import compress_image, photo_side, thumbnail

    if not args.original:
        side = photo_side(_client(args).whoami()["org"].get("photo_max_side"))
        data, name, mime = compress_image(data, name, mime, max_side=side)
    thumb = thumbnail(data, mime)
    transfer = _transfer(args, f"uploading {name}")
    messenger = _messenger(args)
    sent = send_file(messenger, args.channel, data, name, mime, args.text, thumb=thumb, transfer=transfer)
    return {**sent, "attachment": {**sent["attachment"], "original_bytes": original}}


def _transfer(args: argparse.Namespace, label: str) -> HttpTransfer:
    from bocage.client.files import HttpTransfer
    from bocage.progress_bar import ProgressBar, wanted

    return HttpTransfer(progress=ProgressBar(label) if wanted(args.progress) else None)


def cmd_download(args: argparse.Namespace) -> Result:
    from bocage.client.files import fetch_file

    transfer = _transfer(args, f"downloading {args.message_id}")
    meta, data = fetch_file(_messenger(args), args.channel, args.message_id, transfer=transfer)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(meta["name"]).stem, Path(meta["name"]).suffix
    target, n = out / meta["name"], 1
    while target.exists():  # never overwrite: "plan (1).pdf"
        target, n = out / f"{stem} ({n}){suffix}", n + 1
    partial = target.with_name(f".{target.name}.part")
    partial.write_bytes(data)
    partial.replace(target)
    return {**meta, "path": str(target.resolve())}


def cmd_read(args: argparse.Namespace) -> Result:
    return _messenger(args).read(args.channel, since=args.since, limit=args.limit)


def cmd_seen(args: argparse.Namespace) -> Result:
    try:
        return _messenger(args).seen_by(args.channel, args.message_id)
    except LookupError as exc:
        raise CliError(str(exc)) from exc


def cmd_notify(args: argparse.Namespace) -> Result:
    """Signs and posts this member's choice: woken by every message, or only when mentioned."""
    return _messenger(args).set_mentions_only(args.channel, args.mentions_only)


def cmd_react(args: argparse.Namespace) -> Result:
    return _messenger(args).react(args.channel, args.message_id, args.emoji, remove=args.remove)


def cmd_edit(args: argparse.Namespace) -> Result:
    return _messenger(args).edit(args.channel, args.message_id, args.text)


def cmd_delete(args: argparse.Namespace) -> Result:
    return _messenger(args).delete(args.channel, args.message_id)


def cmd_listen(args: argparse.Namespace) -> Result:
    """Streams messages on stdout, one a line, then returns a summary.

    Trust warnings (an uncertified sender, a changed key, a membership log that does not extend
    what this device saw) go to stderr as they arise, not only in the summary: a listener may run
    for days.
    """
    received = 0
    as_json = getattr(args, "json", False)
    messenger = _messenger(args)

    def ready() -> None:
        print("listening", file=sys.stderr, flush=True)

    for message in messenger.listen(count=args.count, timeout=args.timeout, on_ready=ready):
        received += 1
        if as_json:
            print(json.dumps(message, ensure_ascii=False), flush=True)
        else:
            print(
                f"[{message['channel_id']}] {message.get('sender_name', '?')}: {_shown(message)}", flush=True
            )
        for warning in messenger.trust.take_warnings():
            line = (
                json.dumps({"warning": warning}, ensure_ascii=False)
                if as_json
                else f"warning: {warning['message']}"
            )
            print(line, file=sys.stderr, flush=True)
    return {"received": received}


def cmd_poll_create(args: argparse.Namespace) -> Result:
    delay = _seconds(args.closes) if args.closes else None
    messenger = _messenger(args)
    closes_at = None if delay is None else int(messenger.clock()) + delay
    return messenger.create_poll(
        args.channel,
        args.question,
        args.options,
        multiple=args.multiple,
        closes_at=closes_at,
        show_voters=args.show_voters,
    )


def cmd_poll_vote(args: argparse.Namespace) -> Result:
    return _messenger(args).vote(args.channel, args.poll_id, args.choices)


def cmd_poll_close(args: argparse.Namespace) -> Result:
    return _messenger(args).close_poll(args.channel, args.poll_id)


def cmd_poll_results(args: argparse.Namespace) -> Result:
    try:
        return _messenger(args).poll_results(args.channel, args.poll_id)
    except LookupError as exc:
        raise CliError(str(exc)) from exc


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d{1,6})([smhd])", duration.strip())
    if match is None:
        raise CliError("a closing delay is a number and a unit: 30m, 2h or 7d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def cmd_billing_run(args: argparse.Namespace) -> Result:
    if args.server:
        return _operator_client(args).run_billing(month=args.month, dry_run=args.dry_run)
    from bocage.local import admin

    return admin.run_billing(args.data, args.month, dry_run=args.dry_run)


def cmd_plan_show(args: argparse.Namespace) -> Result:
    return _client(args).plan()


def cmd_plan_pilot_end(args: argparse.Namespace) -> Result:
    return _client(args).choose_pilot_end(args.choice)


def cmd_invoices(args: argparse.Namespace) -> Result:
    return _client(args).invoices()


def cmd_invoice(args: argparse.Namespace) -> Result:
    found = _client(args).invoice(args.month)
    if args.csv:
        from chalicelib.domain.billing import Invoice, invoice_csv

        return {"format": "csv", "csv": invoice_csv(Invoice.model_validate(found))}
    return found


def cmd_report(args: argparse.Namespace) -> Result:
    return _client(args).pilot_report(csv=args.csv)


def cmd_impact(args: argparse.Namespace) -> Result:
    if args.server:
        return BocageClient(args.server).impact()
    from bocage.local import admin

    return admin.public_impact(args.data)


def cmd_retention_set(args: argparse.Namespace) -> Result:
    return _client(args).set_retention(args.duration, args.channel)


def cmd_retention_show(args: argparse.Namespace) -> Result:
    return _client(args).retention(args.channel)


def cmd_call_credentials(args: argparse.Namespace) -> Result:
    return _client(args).call_ice(args.channel)


def cmd_audit(args: argparse.Namespace) -> Result:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    client = _client(args)
    if args.keep:
        return client.set_audit_retention(args.keep)
    entries = list(itertools.islice(client.audit_entries(page_size=min(args.limit, 200)), args.limit))
    return {"entries": entries}


# -- helpers ----------------------------------------------------------------------------


def _messenger(args: argparse.Namespace) -> Messenger:
    """The device's Messenger, kept on ``args`` so that its trust warnings reach the output."""
    if getattr(args, "messenger", None) is None:
        try:
            args.messenger = Messenger(_profile(args))
        except FileNotFoundError as exc:
            raise CliError(str(exc)) from exc
    messenger: Messenger = args.messenger
    return messenger


def _warnings(args: argparse.Namespace) -> list[dict[str, Any]]:
    messenger = getattr(args, "messenger", None)
    return messenger.trust.take_warnings() if messenger is not None else []


def _shown(message: Result) -> str:
    return str(message["text"]) if message.get("verified") else f"<{message.get('error', 'unreadable')}>"


def _profile(args: argparse.Namespace) -> Profile:
    return Profile(getattr(args, "profile", None) or DEFAULT_PROFILE)


def _operator_client(args: argparse.Namespace, hint: str = "") -> BocageClient:
    if not args.operator_key:
        raise CliError(f"--server needs --operator-key FILE (or BOCAGE_OPERATOR_KEY_FILE){hint}")
    return BocageClient(args.server, operator=OperatorKey.load(args.operator_key))


def _client(args: argparse.Namespace) -> BocageClient:
    profile = _profile(args)
    try:
        info = profile.info()
        keys = profile.keys()
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    return BocageClient(info["server"], device=keys)


def _with_qr(result: Result, qr_file: str | None, link: str = "activation_url") -> Result:
    """The result, its ``link`` also written as a QR code to ``qr_file`` if one is asked."""
    if qr_file:
        try:
            write_qr(result[link], qr_file)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        result = {**result, "qr_file": qr_file}
    return result


def _read_lines(result: Result) -> Iterator[str]:
    for m in result["messages"]:
        yield f"#{m['seq']} {m['sender_name']}: {_shown(m)}"
    yield f"cursor: {result['cursor']}"


def _audit_lines(result: Result) -> Iterator[str]:
    for e in result["entries"]:
        when = dt.datetime.fromtimestamp(e["at"], tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
        who = e["actor"]["display_name"] or e["actor"]["member_id"]
        what = " ".join(f"{k}={v}" for k, v in {**e["targets"], **e["details"]}.items())
        yield f"{when}  {who}  {e['action']}  {what}"


def _member_lines(result: Result) -> Iterator[str]:
    for m in result["members"]:
        devices = ", ".join(
            d["device_id"] + (" (revoked)" if d.get("revoked_at") else "") for d in m["devices"]
        )
        yield f"{m['member_id']}  {m['role']:<6}  {m['status']:<8}  {m['display_name']}  [{devices}]"


#: Commands shown one line per item, and the key their listing is under.
_LINES: dict[str, Callable[[Result], Iterator[str]]] = {
    "read": _read_lines,
    "audit": _audit_lines,
    "members": _member_lines,
}
_LINES_KEY = {"read": "messages", "audit": "entries", "members": "members"}


def _print_human(command: str, result: Result) -> None:
    if "activation_url" in result and "activation_code" in result:
        print(f"Activation code: {result['activation_code']}")
        print(f"Activation URL:  {result['activation_url']}")
        if result.get("qr_file"):
            print(f"QR code written to {result['qr_file']}")
        else:
            print(qr_terminal(result["activation_url"]))
        if result.get("mail_error"):
            print(f"Warning: {result['mail_error']}", file=sys.stderr)
        return
    if result.get("format") == "csv":
        print(result["csv"], end="")
        return
    lines = _LINES.get(command)
    if lines is not None and _LINES_KEY[command] in result:
        for line in lines(result):
            print(line)
        return
    print(json.dumps(result, indent=2, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _late_text(parser, args, extra)
    as_json = getattr(args, "json", False)
    try:
        result = args.func(args)
    # ValueError also covers a corrupt profile (JSONDecodeError), bad keys (nacl) and a bad URL.
    except (
        ApiError,
        BocageError,
        CliError,
        CryptoError,
        OSError,
        ValueError,
        TrustError,
        MembershipRefused,
    ) as exc:
        error = {**_error_body(exc), "warnings": _warnings(args)}
        if as_json:
            print(json.dumps(error, ensure_ascii=False))
        else:
            print(f"bocage: {error['message']}", file=sys.stderr)
            _print_warnings(error["warnings"])
        return 3 if isinstance(exc, MembershipRefused) else 1
    warnings = _warnings(args)
    if warnings or getattr(args, "messenger", None) is not None:
        result = {**result, "warnings": [*result.get("warnings", []), *warnings]}
    if args.command == "serve":
        return 0
    if args.command == "listen":  # already streamed, one line a message
        return 0
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print_human(args.command, {k: v for k, v in result.items() if k != "warnings"})
        _print_warnings(result.get("warnings", []))
    return 0


def _print_warnings(warnings: list[dict[str, Any]]) -> None:
    for warning in warnings:
        print(f"bocage: warning [{warning['code']}]: {warning['message']}", file=sys.stderr)


def _error_body(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, MembershipRefused):
        return {"error": exc.warning.code, "message": str(exc)}
    if isinstance(exc, ApiError):
        return {"error": exc.code, "status": exc.status, "message": exc.message}
    if isinstance(exc, BocageError):
        return {"error": exc.code, "status": exc.status, "message": exc.message}
    return {"error": "cli_error", "message": str(exc)}
