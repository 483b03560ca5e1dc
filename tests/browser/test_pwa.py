"""The installable web app in Chromium: manifest and service worker (install criteria), an offline
start that shows the cached messages, the unread count in the tab title, a notification from the
hidden page that names the channel only, the phone layout's share of the screen, the QR code and
the impact page on a desktop; and a new version that waits and is announced.

One browser (the owner) and a CLI profile (the other member who writes), over a real `bocage serve`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.conftest import ROOT, shoot, watch_console
from tests.browser.test_web_app import (
    activate,
    add_to_channel,
    create_channel,
    invite,
    message,
    send,
    wait_for,
)
from tests.e2e.conftest import Server, start_server

GROUP = "Voirie"
FIRST = "Nids-de-poule rue des Lilas"
WHILE_HIDDEN = "Rendez-vous 14h devant la mairie"

# What the page's service worker has shown (title, body), from the page.
NOTIFICATIONS_JS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
}"""


# The page as when its tab is in the background.
HIDE_JS = """() => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def installable(page: Any) -> dict[str, Any]:
    """What Chromium says about installing the page: its parsed manifest and its installability errors."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = page.context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    controlled = page.evaluate("Boolean(navigator.serviceWorker.controller)")
    cdp.detach()
    return {"manifest": manifest, "errors": errors, "controlled": controlled}


def install_criteria(page: Any, server: Server) -> None:
    """A parsed manifest with its icons, a service worker controlling the page, no installability error."""
    expect(page.locator("link[rel=manifest]")).to_have_attribute("href", "manifest.webmanifest")
    state = installable(page)
    assert state["controlled"], "the service worker controls the page from its first start"
    assert not state["manifest"]["errors"], state["manifest"]["errors"]
    assert state["errors"] == [], state["errors"]  # nothing stands between the page and "Install"
    parsed = state["manifest"]["manifest"]  # the manifest as Chromium understood it
    assert parsed["display"] in ("standalone", "kStandalone"), parsed  # the latter: older CDP
    assert parsed["startUrl"] == parsed["scope"] == server.url + "/app/", parsed
    assert {i["sizes"] for i in parsed["icons"]} >= {"192x192", "512x512"}, parsed
    assert parsed["themeColor"] and parsed["name"] == "Bocage", parsed


def title_count_and_hidden_notification(
    page: Any, send_from_cli: Callable[[str], object], group_id: str
) -> None:
    """The unread count leads the tab's title; a hidden page notifies, naming the channel only."""
    impact_page_agrees_with_itself(page)
    send_from_cli(FIRST)
    expect(page).to_have_title(re.compile(r"^\(1\) .*Bocage$"))
    page.get_by_role("link", name=re.compile("^Messages")).click()
    page.get_by_role("link", name=re.compile(GROUP)).click()
    expect(message(page, FIRST)).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Voirie · Bocage$"))  # read: the count goes
    assert page.evaluate(NOTIFICATIONS_JS) == []  # a visible page shows, it does not notify

    # Headless Chromium keeps every page visible (no tab or window hides another), so the page is
    # told it is hidden, as a browser does when its tab goes to the background.
    page.evaluate(HIDE_JS)
    send_from_cli(WHILE_HIDDEN)
    expect(message(page, WHILE_HIDDEN)).to_be_attached()
    wait_for(lambda: bool(page.evaluate(NOTIFICATIONS_JS)), "the notification")
    shown = page.evaluate(NOTIFICATIONS_JS)
    assert shown == [{"title": f"Nouveau message dans {GROUP}", "body": "", "tag": f"channel:{group_id}"}]


def impact_page_agrees_with_itself(page: Any) -> None:
    """The organisation's headline CO2e is its table's total; the sources are in French too."""
    page.get_by_role("link", name="Impact").click()
    org = page.locator("section[aria-labelledby=impact-org]")
    expect(org.locator(".org-kpis .kpi").first).to_be_visible()
    headline = org.locator(".org-kpis .kpi-value").first.inner_text()
    total = org.locator("table.data tbody tr").last
    expect(total.locator("th")).to_have_text("Total")
    expect(total.locator("td").last).to_have_text(headline)
    assert headline != "0 mg", headline  # messages were sent: the figure is not a placeholder
    sources = page.locator("section[aria-labelledby=impact-sources] li")
    expect(sources.first).to_contain_text("Courriel : environ")
    expect(sources.nth(1)).to_contain_text("Notification Bocage")
    expect(sources.last).to_contain_text("Stockage des fichiers")


def invitation_qr_above_the_fold(page: Any, name: str, artifacts: Path) -> str:
    """On a 1280x800 desktop the invitation's QR code shows whole without scrolling."""
    page.set_viewport_size({"width": 1280, "height": 800})
    url = invite(page, name)
    box = page.locator("svg.qr").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800, box
    assert page.evaluate("window.scrollY") == 0
    page.screenshot(path=str(artifacts / "pwa-00-invite-qr-1280x800.png"))  # the viewport, as seen
    return url


def offline_start(page: Any, artifacts: Path) -> None:
    """No network at all: a reload shows the app, its channels and the cached messages."""
    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_role("heading", level=1, name=re.compile(GROUP))).to_be_visible()
    expect(message(page, FIRST)).to_be_visible()
    expect(message(page, WHILE_HIDDEN)).to_be_visible()
    page.get_by_role("link", name=re.compile("^Messages")).click()
    expect(page.get_by_role("link", name=re.compile(GROUP))).to_be_visible()
    shoot(page, artifacts, "pwa-01-offline-start")
    page.context.set_offline(False)


def phone_layout(page: Any, server: Server, group_id: str, artifacts: Path) -> None:
    """390x844: a one-row top bar, and the message list takes at least 70 % of the height."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + f"/app/#/c/{group_id}")
    expect(message(page, FIRST)).to_be_visible()
    sizes = page.evaluate(
        """() => ({
          bar: document.getElementById('topbar').getBoundingClientRect().height,
          link: document.querySelector('.nav-link').getBoundingClientRect().height,
          list: document.querySelector('.messages-scroll').getBoundingClientRect().height,
          width: document.documentElement.scrollWidth,
        })"""
    )
    shoot(page, artifacts, "pwa-02-phone-channel")
    assert sizes["bar"] < 2 * sizes["link"], sizes  # one row
    assert sizes["list"] >= 0.70 * 844, sizes
    assert sizes["width"] <= 390, sizes  # nothing sticks out sideways


def test_installable_offline_start_title_notification_and_phone_layout(
    web_server: Server,
    new_context: Callable[..., Any],
    artifacts: Path,
    cli: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    context = new_context("pwa-owner", permissions=["notifications"])
    page = context.pages[0]
    problems: list[str] = []
    watch_console(page, problems)
    activate(page, web_server.owner_url(), "Maire Dupuis")
    install_criteria(page, web_server)

    # The other member: a CLI profile in a group.
    profile = str(tmp_path / "cli")
    cli(
        "--profile",
        profile,
        "activate",
        invitation_qr_above_the_fold(page, "Agent Roux", artifacts),
        "--name",
        "Agent Roux",
    )
    create_channel(page, GROUP, "group")
    add_to_channel(page, "Agent Roux")
    group_id = next(c["channel_id"] for c in cli("--profile", profile, "channels")["channels"])
    send(page, "Bonjour à l'équipe voirie")

    title_count_and_hidden_notification(
        page, lambda text: cli("--profile", profile, "send", group_id, text), group_id
    )
    offline_start(page, artifacts)
    phone_layout(page, web_server, group_id, artifacts)
    assert not problems, problems


def served_now(page: Any, script: str) -> str:
    """What the page fetches now; empty while the reload is still navigating (no page to ask)."""
    try:
        return str(page.evaluate(script))
    except PlaywrightError:
        return ""


def test_a_new_version_installs_waits_and_is_announced(
    new_context: Callable[..., Any], tmp_path: Path
) -> None:
    """Change a file: the next visit installs the new worker, which waits; the page says so, and
    taking it reloads once onto the new files."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "web", site / "web")
    (site / "node_modules").symlink_to(ROOT / "node_modules")
    server = start_server(tmp_path / "data", tmp_path / "serve.log", BOCAGE_WEB_DIR=str(site / "web"))
    try:
        page = new_context("pwa-update").pages[0]
        page.goto(server.url + "/app/")
        expect(page.get_by_role("button", name="Activer cet appareil")).to_be_visible()
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        wait_for(
            lambda: page.evaluate("Boolean(navigator.serviceWorker.controller)"), "the worker in control"
        )
        expect(page.locator("#update-notice")).to_be_hidden()
        style = site / "web" / "style.css"
        style.write_text(style.read_text() + "\n.new-in-this-version { color: inherit; }\n")
        page.reload()  # the browser checks sw.js on each navigation: new bytes, a new version
        notice = page.locator("#update-notice")
        expect(notice).to_contain_text("Nouvelle version disponible", timeout=20_000)
        served = "() => fetch('style.css').then((r) => r.text())"
        assert "new-in-this-version" not in page.evaluate(served)  # the running version stands
        notice.get_by_role("button", name="Recharger maintenant").click()
        expect(page.get_by_role("button", name="Activer cet appareil")).to_be_visible()
        wait_for(lambda: "new-in-this-version" in served_now(page, served), "the new version's files")
        expect(notice).to_be_hidden()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
