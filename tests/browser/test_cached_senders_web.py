"""Messages the web app keeps (IndexedDB) are judged again when shown (docs/protocol.md 14.2,
22.7; docs/web.md), in Debian's Chromium over `bocage serve`. The cache keeps what a message
said and who signed it when; never a verdict to trust. A message opened and kept while its
sender was a member is refused once the device sees a removal (or a partnership's end) dated
before it; a record an older version of the app wrote, for a sender the group never had, is
refused too: the same marking and warning as a fresh read, never shown as the sender's."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from bocage.client.api import BocageClient
from bocage.client.messenger import Messenger
from bocage.client.profile import Profile
from tests.browser.conftest import shoot
from tests.browser.test_not_a_member_web import GROUP, eve_in_town
from tests.browser.test_web_app import message, open_channel, secretary_in_group, town_hall, wait_for
from tests.e2e.conftest import bocage
from tests.e2e.test_partner_cli import become_partners, town_and_firm

AHEAD = 600  # s: past the 300 s that 14.2 allows a departure's clock
REFUSED = "son expéditeur n'est pas membre de ce canal"


def clock_ahead(profile: str) -> Messenger:
    """A member's client whose clock runs AHEAD seconds fast: its messages are signed as sent
    then (the server stores sent_at as it is); its requests' tokens keep the true time."""
    kept = Profile(profile)
    client = BocageClient(kept.info()["server"], device=kept.keys())
    return Messenger(kept, client, clock=lambda: time.time() + AHEAD)


def refused(page: Page) -> Any:
    return page.locator(".messages .msg").filter(has=page.get_by_text(REFUSED))


def back_to(page: Page, url: str, group: str) -> None:
    """The app started again on the group (a reload: going to its own url only moves the
    route): its kept messages show first."""
    if page.url == url:
        page.reload()
    else:
        page.goto(url)
    open_channel(page, group)


#: What the device keeps of a channel: its read cursor, its opened messages' texts by seq, the
#: texts of refused ones kept aside, and every record's kind, verdict and certified member.
KEPT = """async (channelId) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open('bocage');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const get = (store, query) => new Promise((resolve) => {
    const request = db.transaction(store).objectStore(store)[store === 'kv' ? 'get' : 'getAll'](query);
    request.onsuccess = () => resolve(request.result);
  });
  const cursor = (await get('kv', `cursor:${channelId}`)) || 0;
  const messages = (await get('messages')).filter((m) => m.channel_id === channelId);
  db.close();
  return {
    cursor,
    opened: messages.filter((m) => m.verified).map((m) => [m.seq, m.content.text]),
    held: messages.filter((m) => m.held).map((m) => m.held.text),
    records: messages.map((m) => ({
      seq: m.seq, kind: m.kind, verified: Boolean(m.verified), error: m.error || null,
      member: m.sender_member, text: m.content?.text ?? null,
    })),
  };
}"""


def kept_and_read(page: Page, group: str, channel_id: str, text: str) -> None:
    """``text``'s message opened and kept, and the device's read cursor past it, so the next start
    shows it from the cache and reads nothing again: the app started again, its catch-up moves
    the cursor."""
    back_to(page, page.url, group)

    def kept() -> bool:
        found = page.evaluate(KEPT, channel_id)
        return any(shown == text and seq <= found["cursor"] for seq, shown in found["opened"])

    wait_for(kept, f"{text!r} kept and read")


def test_a_kept_message_is_refused_once_a_removal_dated_before_it_is_seen(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Lannion") as (_data, _town, mayor):
        problems: list[str] = []
        secretary, site, eve, eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=True)
        sent = clock_ahead(eve).send_text(site, "Rendez-vous demain")
        expect(message(secretary, "Rendez-vous demain")).to_contain_text("Ève", timeout=30_000)
        app = secretary.url
        kept_and_read(secretary, GROUP, site, "Rendez-vous demain")
        expect(message(secretary, "Rendez-vous demain")).to_contain_text("Ève")
        secretary.goto("about:blank")  # away: the removal is not heard live

        bocage("--profile", mayor, "channel", "remove", site, eve_id)
        back_to(secretary, app, GROUP)
        expect(refused(secretary)).to_have_count(1, timeout=30_000)
        expect(message(secretary, "Rendez-vous demain")).to_have_count(0)
        expect(secretary.locator(".trust-warning[data-code=not_a_member]")).to_be_visible()
        expect(message(secretary, "Ordre du jour")).to_be_visible()  # her own stays
        expect(secretary.locator(f"#preview-{site}")).to_be_visible()  # the channel list's line
        expect(secretary.locator(f"#preview-{site}")).not_to_contain_text("Rendez-vous demain")
        shoot(secretary, artifacts, "cached-senders-01-removal")

        back_to(secretary, app, GROUP)  # the refusal is kept: the next start shows it at once
        expect(refused(secretary)).to_have_count(1, timeout=30_000)
        expect(message(secretary, "Rendez-vous demain")).to_have_count(0)
        assert "Rendez-vous demain" in kept_aside(secretary, site)  # unseen, for a later verdict

        bocage("--profile", mayor, "delete", site, sent["message_id"])  # deleted for everyone
        expect(secretary.get_by_text("Message supprimé")).to_be_visible(timeout=30_000)
        wait_for(lambda: not kept_aside(secretary, site), "the refused message's content gone with it")
        assert not problems, problems


def kept_aside(page: Page, channel_id: str) -> list[str]:
    """The texts the device keeps aside for refused messages (`held`, never shown)."""
    held: list[str] = page.evaluate(KEPT, channel_id)["held"]
    return held


#: A cached record as the app wrote it before 14.2's check: opened, `verified`, its content in
#: clear (``text``); made from a kept message (the one saying ``source``), said to come from
#: another member's device.
OLD_RECORD = """async ([channelId, memberId, deviceId, source, text]) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open('bocage');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const done = (tx) => new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = reject; });
  const read = db.transaction('messages');
  const all = await new Promise((resolve) => {
    const request = read.objectStore('messages').getAll();
    request.onsuccess = () => resolve(request.result.filter((m) => m.channel_id === channelId));
  });
  const mine = all.find((m) => m.verified && m.content?.text === source);
  const seq = Math.max(...all.map((m) => m.seq)) + 1;
  const record = {
    ...mine, seq, message_id: `m_old${seq}`, sender_member: memberId, sender_device: deviceId,
    sent_at_ms: mine.sent_at_ms + 1000, content: { type: 'text', text },
  };
  const tx = db.transaction('messages', 'readwrite');
  tx.objectStore('messages').put(record);
  await done(tx);
  db.close();
  return Object.keys(record).sort().join(',');
}"""


def test_a_record_kept_in_the_old_shape_is_judged_not_trusted(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_hall(tmp_path, "Mairie de Perros") as (_data, _town, mayor):
        problems: list[str] = []
        secretary, site, eve, eve_id = eve_in_town(tmp_path, mayor, new_context, problems, in_group=False)
        app = secretary.url
        kept_and_read(secretary, GROUP, site, "Ordre du jour")
        eve_device = Profile(eve).keys().device_id
        fields = secretary.evaluate(OLD_RECORD, [site, eve_id, eve_device, "Ordre du jour", "Séance annulée"])
        assert "held" not in fields.split(","), fields  # the shape before this version's

        # An offline start: the organisation's listing is not verified, the kept log judges.
        secretary.context.set_offline(True)
        back_to(secretary, app, GROUP)
        expect(refused(secretary)).to_have_count(1, timeout=30_000)
        expect(message(secretary, "Séance annulée")).to_have_count(0)
        secretary.context.set_offline(False)

        back_to(secretary, app, GROUP)
        expect(refused(secretary)).to_have_count(1, timeout=30_000)
        expect(message(secretary, "Séance annulée")).to_have_count(0)
        expect(secretary.locator(".trust-warning[data-code=not_a_member]")).to_be_visible()
        search = secretary.locator("#message-search")
        search.fill("séance")
        expect(secretary.locator(".search-status")).to_contain_text("séance")  # "nothing found"
        expect(secretary.locator(".search-hit")).to_have_count(0)
        shoot(secretary, artifacts, "cached-senders-02-old-record")
        assert not problems, problems


def test_a_kept_message_of_a_partner_is_refused_once_an_end_dated_before_it_is_seen(
    tmp_path: Path, new_context: Callable[..., Any], artifacts: Path
) -> None:
    with town_and_firm(tmp_path) as (_, firm, mayor, architect):
        become_partners(mayor, architect)
        problems: list[str] = []
        secretary, site = secretary_in_group(mayor, new_context, problems, "Chantier")
        bocage("--profile", mayor, "channel", "add", site, firm["member_id"])
        secretary.reload()
        open_channel(secretary, "Chantier")
        bocage("--profile", architect, "send", site, "Les plans sont prêts")
        clock_ahead(architect).send_text(site, "Livraison lundi")
        expect(message(secretary, "Livraison lundi")).to_be_visible(timeout=30_000)
        expect(message(secretary, "Les plans sont prêts")).to_be_visible()
        app = secretary.url
        kept_and_read(secretary, "Chantier", site, "Livraison lundi")
        secretary.goto("about:blank")

        bocage("--profile", mayor, "partner", "end", firm["org_id"])
        back_to(secretary, app, "Chantier")
        expect(refused(secretary)).to_have_count(1, timeout=30_000)
        expect(message(secretary, "Livraison lundi")).to_have_count(0)
        expect(message(secretary, "Les plans sont prêts")).to_be_visible()  # from before the end: theirs
        shoot(secretary, artifacts, "cached-senders-03-partner-end")
        assert not problems, problems
