"""A partner's member in a group, with the web app on one side (docs/protocol.md, 22.6), in
Debian's Chromium over `bocage serve`: the town hall (A) and the firm (B) are partners (CLI); A's
owner adds A's secretary, who uses the browser, and B's architect (CLI) to A's group. The browser
verifies the architect's `add` through B's chain pinned by A's statement, shows them as
"Name (Cabinet Ardoise)", and seals to their device: messages go both ways. Then a server that
slips a third organisation's member into the log is caught (`membership_invalid`), and that
member's device gets no key from the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from bocage.client.issuing import membership_entry
from bocage.client.profile import Profile
from chalicelib.adapters.clocks import SystemClock
from chalicelib.adapters.records import keys
from chalicelib.adapters.records.channels import ChannelRecords
from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.paging import query_all
from chalicelib.adapters.records.sender_keys import SenderKeys
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.domain.channel import ChannelMember, ChannelRole
from tests.browser.conftest import shoot, watch_console
from tests.browser.test_web_app import (
    activate,
    arrives_readable,
    message,
    open_channel,
    secretary_in_group,
    send,
    wait_for,
)
from tests.e2e.conftest import bocage, start_server
from tests.e2e.test_call_relay import owner_of

TOWN, FIRM, GROUP = "Mairie de Plouha", "Cabinet Ardoise", "École"


def slip_in(data: Path, profile: str, channel_id: str, third: dict[str, Any]) -> None:
    """What a malicious server does: an `add` of a third organisation's member, signed by A's
    owner's device (a key it would have to steal; even so the member is nobody A can verify),
    written after the log's head, with the member's device in the roster."""
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    log = keys.channel_partition(channel_id), keys.MEMBERSHIP_LOG_PREFIX
    entries = [item["entry"] for item in query_all(store, *log)]
    signer = Profile(Path(profile)).keys()
    entry = membership_entry(
        signer.signing,
        signer.device_id,
        org_id=entries[-1]["org_id"],
        channel_id=channel_id,
        previous=entries[-1],
        op="add",
        member_id=third["member_id"],
        role="member",
        now=int(entries[-1]["issued_at"]) + 1,
    )
    records = ChannelRecords(store)
    devices = MemberRecords(store).devices_of(third["org_id"], third["member_id"])

    def write() -> None:
        store.put(keys.record(keys.membership_entry(channel_id, entry["seq"]), {"entry": entry}))
        records.save_membership(
            ChannelMember(
                channel_id=channel_id,
                member_id=third["member_id"],
                role=ChannelRole.MEMBER,
                added_at=1,
                added_by="x",
            )
        )
        records.add_devices(channel_id, devices)

    records.change_roster(channel_id, write)  # the roster moves: clients look at the log again
    store.close()


def sealed_to(data: Path, channel_id: str, device_id: str) -> list[Any]:
    store = SqliteStore(str(data / "bocage.sqlite3"), SystemClock())
    try:
        epoch = ChannelRecords(store).epoch(channel_id).number
        return [k for k in SenderKeys(store).sealed_to(channel_id, epoch, device_id)]
    finally:
        store.close()


def reads(profile: str, site: str, text: str, sender_name: str) -> Callable[[], bool]:
    """Whether the CLI profile reads ``text``, verified, from ``sender_name``."""

    def check() -> bool:
        read = bocage("--profile", profile, "read", site, "--since", "0")["messages"]
        return any(m.get("text") == text and m["verified"] and m["sender_name"] == sender_name for m in read)

    return check


def partner_s_browser(
    new_context: Callable[..., Any],
    problems: list[str],
    artifacts: Path,
    mayor: str,
    architect: str,
    site: str,
    secretary: Any,
) -> None:
    """B's web user in A's group: the log replayed from A's side (A hosts it, she is a partner
    there), A's people shown with A's name, her message sealed to A's devices."""
    drafter_invite = bocage("--profile", architect, "invite", "--name", "Dessinatrice")
    drafter = new_context("drafter").pages[0]
    watch_console(drafter, problems)
    activate(drafter, drafter_invite["activation_url"], "Dessinatrice")
    bocage("--profile", mayor, "channel", "add", site, drafter_invite["member_id"])
    bocage("--profile", mayor, "send", site, "Réunion de chantier lundi")
    drafter.reload()
    open_channel(drafter, GROUP)
    from_town = message(drafter, "Réunion de chantier lundi")
    expect(from_town).to_be_visible(timeout=30_000)
    expect(from_town).to_contain_text(f"Maire ({TOWN})")
    send(drafter, "J'apporte les plans")
    wait_for(reads(mayor, site, "J'apporte les plans", f"Dessinatrice ({FIRM})"), "A's owner to read her")
    # The secretary's page stayed open: her first message, a moment after the owner's, reads at
    # once (a key fetch made for the owner's message predates her key and is not reused for it).
    expect(arrives_readable(secretary, "J'apporte les plans")).to_contain_text(f"Dessinatrice ({FIRM})")
    expect(drafter.locator(".trust-warning")).to_have_count(0)
    shoot(drafter, artifacts, "partner-groups-02-partner-browser")


def test_a_web_user_and_a_partner_s_member_talk_in_a_group_and_a_stranger_is_refused(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    data = tmp_path / "data"
    town = bocage("org", "create", TOWN, "--data", str(data))
    firm = bocage("org", "create", FIRM, "--data", str(data))
    third_org = bocage("org", "create", "Troisième", "--data", str(data))
    server = start_server(data, tmp_path / "serve.log")
    try:
        mayor = owner_of(town, server, tmp_path / "mayor")
        architect = owner_of(firm, server, tmp_path / "architect")
        owner_of(third_org, server, tmp_path / "third")
        bocage(
            "--profile",
            architect,
            "partner",
            "accept",
            bocage("--profile", mayor, "partner", "invite")["code"],
        )
        bocage("--profile", mayor, "partners")  # countersigns: active on both sides

        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        bocage("--profile", mayor, "channel", "add", site, firm["member_id"])
        bocage("--profile", architect, "send", site, "Les plans sont prêts")

        secretary.reload()
        open_channel(secretary, GROUP)
        from_firm = message(secretary, "Les plans sont prêts")
        expect(from_firm).to_be_visible(timeout=30_000)
        expect(from_firm).to_contain_text(f"Maire ({FIRM})")
        send(secretary, "Merci, bien reçu")

        wait_for(
            reads(architect, site, "Merci, bien reçu", f"Secrétaire ({TOWN})"),
            "the partner's member to read the browser's message",
        )
        expect(secretary.locator(".trust-warning")).to_have_count(0)
        shoot(secretary, artifacts, "partner-groups-01-both-ways")

        partner_s_browser(new_context, problems, artifacts, mayor, architect, site, secretary)
        slip_in(data, mayor, site, third_org)
        secretary.get_by_label("Votre message").fill("Après l'intrusion")
        secretary.get_by_role("button", name="Envoyer").click()
        expect(secretary.locator(".trust-warning[data-code=membership_invalid]")).to_be_visible(
            timeout=30_000
        )
        third_devices = MemberRecords(SqliteStore(str(data / "bocage.sqlite3"), SystemClock())).devices_of(
            third_org["org_id"], third_org["member_id"]
        )
        assert third_devices and all(sealed_to(data, site, d.device_id) == [] for d in third_devices)
        shoot(secretary, artifacts, "partner-groups-03-stranger-refused")
        assert not problems, problems
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
