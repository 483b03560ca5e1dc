"""A certified member who is not in a group posts there through a complicit server, with the
web app reading (docs/protocol.md, 14.2), in Debian's Chromium over `bocage serve`: the server
lets Eve (a certified member of the town hall, never added to the group) into its records and
roster without a signed entry; her CLI seals its key to the group's devices and posts. The open
page shows no content for her message, says why, and warns `not_a_member`; the owner's next
message still reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
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


def test_a_message_from_someone_not_in_the_group_is_refused_in_the_page(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Paimpol") as (data, town, mayor):
        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        eve = str(tmp_path / "eve")
        eve_invite = bocage("--profile", mayor, "invite", "--name", "Ève")
        bocage("--profile", eve, "activate", eve_invite["activation_url"], "--name", "Ève")
        secretary.reload()
        open_channel(secretary, GROUP)
        send(secretary, "Ordre du jour")

        let_in(data, site, town["org_id"], eve_invite["member_id"])
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
