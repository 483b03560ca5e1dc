"""A certified member who is not in a group posts there through a complicit server, with the
web app reading (docs/protocol.md, 14.2), in Debian's Chromium over `bocage serve`: the server
lets Eve (a certified member of the town hall, never added to the group) into its records and
roster without a signed entry; her CLI seals its key to the group's devices and posts. The open
page shows no content for her message, says why, and warns `not_a_member`; the owner's next
message still reads. A former member's message whose date the server moved after her departure
is called forged, not blamed on her: the signature is checked before the sender's standing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.messages import MessageRecords
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.channel import ChannelMember, ChannelRole
from tests.browser.conftest import shoot
from tests.browser.test_web_app import (
    message,
    open_channel,
    secretary_in_group,
    send,
    town_hall,
)
from tests.e2e.conftest import bocage

GROUP = "Conseil"


def let_in(data: Path, channel_id: str, org_id: str, member_id: str) -> None:
    """What a complicit server does: the member in its records and roster, no signed entry."""
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    records = ChannelRecords(store)
    devices = MemberRecords(store).devices_of(org_id, member_id)

    def write() -> None:
        records.save_membership(
            ChannelMember(
                channel_id=channel_id, member_id=member_id, role=ChannelRole.MEMBER, added_at=1, added_by="x"
            )
        )
        records.add_devices(channel_id, devices)

    records.change_roster(channel_id, write)
    store.close()


def eve_in_town(
    tmp_path: Path, mayor: str, new_context: Callable[..., Any], problems: list[str], *, in_group: bool
) -> tuple[Any, str, str, str]:
    """The secretary in the mayor's group and Eve, certified by the town hall (added to the group
    if ``in_group``); the secretary's page open on the group, where she has written: (her page,
    the group's id, Eve's profile, Eve's member id)."""
    secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
    eve = str(tmp_path / "eve")
    eve_invite = bocage("--profile", mayor, "invite", "--name", "Ève")
    bocage("--profile", eve, "activate", eve_invite["activation_url"], "--name", "Ève")
    if in_group:
        bocage("--profile", mayor, "channel", "add", site, eve_invite["member_id"])
    secretary.reload()
    open_channel(secretary, GROUP)
    send(secretary, "Ordre du jour")
    return secretary, site, eve, eve_invite["member_id"]


def test_a_message_from_someone_not_in_the_group_is_refused_in_the_page(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Paimpol") as (data, town, mayor):
        problems: list[str] = []
        secretary, site, eve, eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=False)

        let_in(data, site, town["org_id"], eve_id)
        bocage("--profile", eve, "send", site, "Séance annulée")
        refused = secretary.locator(".messages .msg").filter(
            has=secretary.get_by_text("son expéditeur n'est pas membre de ce canal")
        )
        expect(refused).to_have_count(1, timeout=30_000)
        expect(secretary.locator(".trust-warning[data-code=not_a_member]")).to_be_visible()
        expect(message(secretary, "Séance annulée")).to_have_count(0)

        bocage("--profile", mayor, "send", site, "La séance est maintenue")
        # Eve's refused message stays on the page (shown as refused), so not `arrives_readable`.
        expect(message(secretary, "La séance est maintenue")).to_contain_text("Maire", timeout=30_000)
        expect(message(secretary, "Séance annulée")).to_have_count(0)
        shoot(secretary, artifacts, "not-a-member-01-refused")
        assert not problems, problems


def move_date(data: Path, channel_id: str, message_id: str) -> None:
    """What a lying server does: the stored message's (signed) sent_at an hour later."""
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    records = MessageRecords(store)
    stored = records.find(channel_id, message_id)
    assert stored is not None
    records.store(stored.model_copy(update={"sent_at": stored.sent_at + 3_600_000}))
    store.close()


def restamp(data: Path, channel_id: str, message_id: str, sender_member: str) -> None:
    """What a lying server does: the stored message's sender stamp (never signed) changed."""
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    records = MessageRecords(store)
    stored = records.find(channel_id, message_id)
    assert stored is not None
    records.store(stored.model_copy(update={"sender_member": sender_member}))
    store.close()


def test_a_members_message_stamped_as_a_followers_is_shown_as_hers_and_the_lie_reported(
    tmp_path: Path, new_context: Callable[..., Any]
) -> None:
    """A server stamping a member's message with a follower's id cannot have it dropped quietly
    (as a departed follower's reaction is): her certified device makes it hers, and the
    relabelling is reported (forged_sender)."""
    with town_hall(tmp_path, "Mairie de Paimpol") as (data, _town, mayor):
        problems: list[str] = []
        secretary, site, _eve, _eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=False)
        app = secretary.url
        secretary.goto("about:blank")
        sent = bocage("--profile", mayor, "send", site, "Séance jeudi à 18 h")
        restamp(data, site, sent["message_id"], "f_aaaaaaaaaaaaaaaa")
        secretary.goto(app)
        open_channel(secretary, GROUP)
        expect(message(secretary, "Séance jeudi à 18 h")).to_be_visible(timeout=30_000)
        expect(secretary.locator(".trust-warning[data-code=forged_sender]")).to_have_count(1, timeout=30_000)


def test_a_moved_date_is_called_forged_not_blamed_on_the_former_member(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Paimpol") as (data, _town, mayor):
        problems: list[str] = []
        secretary, site, eve, eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=True)
        app = secretary.url
        secretary.goto("about:blank")  # away while Eve writes, leaves, and the server lies

        sent = bocage("--profile", eve, "send", site, "Avant mon départ")
        bocage("--profile", mayor, "channel", "remove", site, eve_id)
        move_date(data, site, sent["message_id"])
        secretary.goto(app)
        open_channel(secretary, GROUP)
        forged = secretary.locator(".messages .msg").filter(
            has=secretary.get_by_text("sa signature ne correspond pas")
        )
        expect(forged).to_have_count(1, timeout=30_000)
        expect(message(secretary, "Avant mon départ")).to_have_count(0)
        expect(secretary.locator(".trust-warning[data-code=not_a_member]")).to_have_count(0)
        shoot(secretary, artifacts, "not-a-member-02-forged")
        assert not problems, problems
