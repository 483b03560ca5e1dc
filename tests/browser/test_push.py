"""Web Push in Chromium, end to end over a real `bocage serve` and a push service stand-in
(real HTTPS on loopback): the opt-in on the device page registers the subscription, a message
written while the app is closed reaches the stand-in sealed for the device, and the service
worker, handed that push through the DevTools protocol (``ServiceWorker.deliverPushMessage``),
shows "Nouveau message dans <channel>" with the name the device knows and no text in clear,
and shows nothing a forged push carries.

Headless Chromium cannot reach a real push service, so ``pushManager.subscribe`` is the one part
replaced: it answers a subscription to the stand-in with this test's keys (``PushDevice``),
after checking it was given the server's VAPID key. Everything else is the app's own code.
"""

from __future__ import annotations

import json
import stat
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from bocage.client.api import BocageClient
from bocage.client.profile import Profile
from tests.browser.conftest import shoot, watch_console
from tests.browser.test_pwa import NOTIFICATIONS_JS
from tests.browser.test_web_app import activate, add_to_channel, create_channel, invite, message
from tests.e2e.conftest import Server
from tests.push_service import PushDevice, PushServiceStandIn, verify_vapid

GROUP = "Voirie"
SECRET_TEXT = "Le code du portail est 4521"

# The browser's subscribe, answering a subscription to the stand-in (headless Chromium has no
# push service); the key the app passed is kept for the test to compare with the server's.
SUBSCRIBE_JS = """(subscription) => {
  let current = null;
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    globalThis.__vapidKey = btoa(String.fromCharCode(...key))
      .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
    current = { endpoint: subscription.endpoint, toJSON: () => subscription, unsubscribe: async () => true };
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
}"""


CLOSE_NOTIFICATIONS_JS = """async () => {
  for (const n of await (await navigator.serviceWorker.ready).getNotifications()) n.close();
}"""


# What this device remembers of its "mentions only" choices, forgotten (IndexedDB 'bocage', 'kv').
FORGET_LOCAL_MENTIONS_JS = """() => new Promise((resolve, reject) => {
  const opened = indexedDB.open('bocage');
  opened.onerror = () => reject(opened.error);
  opened.onsuccess = () => {
    const kv = opened.result.transaction('kv', 'readwrite').objectStore('kv');
    const read = kv.get('push');
    read.onsuccess = () => {
      const written = kv.put({ ...read.result, mentionsOnly: [] }, 'push');
      written.onsuccess = () => { opened.result.close(); resolve(true); };
      written.onerror = () => reject(written.error);
    };
  };
})"""


def server_key(server: Server) -> str:
    with urllib.request.urlopen(server.url + "/push", timeout=10) as answer:
        key: str = json.load(answer)["public_key"]
    return key


def deliver_push(page: Any, origin: str, data: str) -> None:
    """Hand the service worker a push, as the browser does when its push service delivers one,
    and wait for a notification. DevTools' delivery answers before the worker has run the event,
    and in one loaded CI run a delivery showed nothing for 20 s: it is handed over again (at most
    three times) while no notification shows, which every shown notification's tag makes harmless."""
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(40):  # CDP events arrive while Playwright waits, not while Python sleeps
        if any(r["scopeURL"] == origin + "/app/" and not r["isDeleted"] for r in registrations):
            break
        page.wait_for_timeout(250)
    registration = next(r for r in registrations if r["scopeURL"] == origin + "/app/" and not r["isDeleted"])
    for _ in range(3):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": registration["registrationId"], "data": data},
        )
        for _ in range(28):
            if page.evaluate(NOTIFICATIONS_JS):
                cdp.detach()
                return
            page.wait_for_timeout(250)
    cdp.detach()
    raise AssertionError(f"no notification after three pushes to registration {registration}")


def mayor_and_agent(
    push_server: Server, push_service: PushServiceStandIn, context: Any, cli: Any, tmp_path: Path
) -> tuple[PushDevice, Any, str, str, list[str]]:
    """The mayor in the browser (its subscribe answering the stand-in) and an agent on the CLI,
    in one group: the push device, the page, the agent's profile, the group and the page's problems."""
    device = PushDevice()
    context.add_init_script(
        script=f"({SUBSCRIBE_JS})({json.dumps(device.subscription(push_service.endpoint('owner')))})"
    )
    page = context.pages[0]
    problems: list[str] = []
    watch_console(page, problems)
    activate(page, push_server.owner_url(), "Maire Dupuis")
    profile = str(tmp_path / "cli")
    cli("--profile", profile, "activate", invite(page, "Agent Roux"), "--name", "Agent Roux")
    create_channel(page, GROUP, "group")
    add_to_channel(page, "Agent Roux")
    group_id = next(c["channel_id"] for c in cli("--profile", profile, "channels")["channels"])
    return device, page, profile, group_id, problems


def test_opt_in_then_a_sealed_push_shows_the_channel_name_only(
    push_server: Server,
    push_service: PushServiceStandIn,
    new_context: Callable[..., Any],
    cli: Callable[..., dict[str, Any]],
    artifacts: Path,
    tmp_path: Path,
) -> None:
    device, page, profile, group_id, problems = mayor_and_agent(
        push_server, push_service, new_context("push-owner", permissions=["notifications"]), cli, tmp_path
    )

    # The opt-in, on the device page.
    page.get_by_role("link", name="Cet appareil").click()
    page.get_by_role("button", name="Recevoir les notifications").click()
    expect(page.locator(".push-status")).to_have_text("Les notifications sont activées sur cet appareil.")
    assert page.evaluate("globalThis.__vapidKey") == server_key(push_server)
    key_file = tmp_path / "data" / "vapid.key"  # generated on the first start, for its owner only
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    shoot(page, artifacts, "push-01-opted-in")
    page.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name=GROUP).click()
    expect(page.get_by_role("button", name="Couper les notifications")).to_be_visible()

    # The app closed (no WebSocket): a message from the other member is pushed, sealed.
    page.goto("about:blank")
    for _ in range(4):  # the server may take a moment to see the WebSocket go: until then it is live
        cli("--profile", profile, "send", group_id, SECRET_TEXT)
        if push_service.wait_for(1, timeout=3):
            break
    # Under load a second send may land after the coalescing window: each push is checked alike.
    assert push_service.received and all(r.path == "/push/owner" for r in push_service.received)
    received = push_service.received[0]
    verify_vapid(
        received.headers["authorization"], f"https://localhost:{push_service.port}", server_key(push_server)
    )
    payload = device.open(received.body).decode()
    assert json.loads(payload) == {"channel_id": group_id}
    assert SECRET_TEXT.encode() not in received.body and GROUP.encode() not in received.body

    # The browser hands the push to the service worker: it names the channel as the device knows it.
    page.goto(push_server.url + "/app/#/device")
    expect(page.locator(".push-status")).to_be_visible()
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.evaluate(CLOSE_NOTIFICATIONS_JS)
    deliver_push(page, push_server.url, payload)
    assert page.evaluate(NOTIFICATIONS_JS) == [
        {"title": f"Nouveau message dans {GROUP}", "body": "", "tag": f"channel:{group_id}"}
    ]

    # A malicious server (or push service) slipping words into a push gets none of them shown:
    # an unknown channel, extra fields or a payload that is no JSON give the generic title.
    for forged in (
        json.dumps({"channel_id": "c_unknown", "text": "Virement urgent : cliquez ici", "title": "Banque"}),
        json.dumps({"channel_id": group_id + "<img src=x onerror=alert(1)>"}),
        "Virement urgent : cliquez ici",
    ):
        page.evaluate(CLOSE_NOTIFICATIONS_JS)
        deliver_push(page, push_server.url, forged)
        [shown] = page.evaluate(NOTIFICATIONS_JS)
        assert (shown["title"], shown["body"]) == ("Nouveau message dans Bocage", ""), (forged, shown)
    assert not problems, problems


def test_mentions_only_wakes_the_device_only_for_a_message_naming_its_member(
    push_server: Server,
    push_service: PushServiceStandIn,
    new_context: Callable[..., Any],
    cli: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    """docs/protocol.md 17, "@mention me only": the person chooses "Seulement les mentions" in the
    group; with the app closed, a CLI member's message that mentions them wakes the device, one
    that does not wakes nothing."""
    device, page, profile, group_id, problems = mayor_and_agent(
        push_server, push_service, new_context("push-mentions", permissions=["notifications"]), cli, tmp_path
    )
    mayor = next(
        m["member_id"]
        for m in cli("--profile", profile, "members")["members"]
        if m["display_name"] == "Maire Dupuis"
    )
    page.get_by_role("link", name="Cet appareil").click()
    page.get_by_role("button", name="Recevoir les notifications").click()
    expect(page.locator(".push-status")).to_have_text("Les notifications sont activées sur cet appareil.")
    page.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name=GROUP).click()
    page.get_by_role("button", name="Seulement les mentions").click()
    expect(page.get_by_role("button", name="Toutes les notifications")).to_be_visible()
    expect(page.get_by_role("button", name="Couper les notifications")).to_be_visible()
    # The button shows the member's choice as the server keeps it (signed, verified here), not
    # only what this device remembers: another of its devices may have made it.
    page.evaluate(FORGET_LOCAL_MENTIONS_JS)
    page.reload()
    page.get_by_role("link", name=GROUP).click()
    expect(page.get_by_role("button", name="Toutes les notifications")).to_be_visible()

    page.goto("about:blank")  # the app closed: no WebSocket
    for _ in range(4):  # the server may take a moment to see the WebSocket go: until then it is live
        cli("--profile", profile, "send", group_id, "@Maire Dupuis un point ?", "--mention", mayor)
        if push_service.wait_for(1, timeout=3):
            break
    assert [r.path for r in push_service.received] == ["/push/owner"]
    time.sleep(6)  # past the coalescing window (5 s) of that push
    cli("--profile", profile, "send", group_id, "Compte rendu en ligne")
    time.sleep(3)
    assert len(push_service.received) == 1  # stored, but no mention: no push
    cli("--profile", profile, "send", group_id, "@Maire Dupuis signez svp", "--mention", mayor)
    assert len(push_service.wait_for(2, timeout=10)) == 2
    assert json.loads(device.open(push_service.received[1].body)) == {"channel_id": group_id}

    web_sender_names_a_mentions_only_member(page, push_server, push_service, cli, profile, group_id)
    assert not problems, problems


def web_sender_names_a_mentions_only_member(
    page: Any,
    push_server: Server,
    push_service: PushServiceStandIn,
    cli: Callable[..., dict[str, Any]],
    profile: str,
    group_id: str,
) -> None:
    """The other way round: the CLI member chose "mentions only"; the browser's composer names
    them in ``notify`` (over its WebSocket) only in the message that mentions them."""
    agent = Profile(Path(profile))
    agent_device = PushDevice()
    client = BocageClient(push_server.url, device=agent.keys())
    client.register_push(agent.info()["device_id"], agent_device.subscription(push_service.endpoint("agent")))
    cli("--profile", profile, "notify", group_id, "--mentions-only")
    page.goto(push_server.url + "/app/")
    page.get_by_role("link", name=GROUP).click()
    box = page.get_by_label("Votre message")
    box.fill("Réunion demain")
    box.press("Enter")
    expect(message(page, "Réunion demain")).to_be_visible()
    time.sleep(3)
    assert push_service.to("agent") == []
    box.press_sequentially("Merci @agent")
    box.press("Enter")  # picks "@Agent Roux"
    box.press_sequentially("pour le compte rendu")
    box.press("Enter")
    expect(message(page, "pour le compte rendu")).to_be_visible()
    for _ in range(40):
        if push_service.to("agent"):
            break
        time.sleep(0.25)
    [woken] = push_service.to("agent")
    assert json.loads(agent_device.open(woken.body)) == {"channel_id": group_id}
