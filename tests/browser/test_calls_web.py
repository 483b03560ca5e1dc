"""A call in the web app (docs/calls.md, protocol 19), in Debian's Chromium with fake camera and
microphone, between two browser contexts on loopback, media forced through the coturn the test
starts (``iceTransportPolicy: "relay"``): the owner calls from the group, the agent's device
rings and answers, each side's ``getStats()`` shows audio and video bytes received over a relay
candidate pair, and hanging up ends the call on both. Then the microphone refused shows why."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import CHROMIUM_ARGS, watch_console
from tests.browser.test_web_app import (
    activate,
    add_to_channel,
    create_channel,
    invite,
    open_channel,
    wait_for,
)
from tests.coturn import coturn
from tests.e2e.conftest import Server, bocage, start_server

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
RELAY_ONLY = "localStorage.setItem('bocage.calls.relay_only', '1')"


@pytest.fixture
def call_setup(
    tmp_path: Path, playwright_api: tuple[Any, str], request: pytest.FixtureRequest
) -> Iterator[tuple[Server, list[Any], str]]:
    data = tmp_path / "data"
    created = bocage("org", "create", "Mairie de Plouha", "--plan", "pro", "--data", str(data))
    with coturn(tmp_path, verbose="throughput" in request.node.name) as turn:
        server = start_server(
            data,
            tmp_path / "serve.log",
            BOCAGE_TURN_URLS=turn.turn_url,
            BOCAGE_STUN_URLS=turn.stun_url,
            BOCAGE_TURN_SECRET=turn.secret,
        )
        api, executable = playwright_api
        contexts = []
        try:
            for name in ("owner", "agent", "third"):
                if name == "third" and not ("third" in request.node.name or "elsewhere" in request.node.name):
                    continue
                context = api.chromium.launch_persistent_context(
                    str(tmp_path / f"chromium-{name}"),
                    executable_path=executable,
                    headless=True,
                    args=[*CHROMIUM_ARGS, *FAKE_MEDIA],
                    locale="fr-FR",
                    timezone_id="Europe/Paris",
                    viewport={"width": 1000, "height": 760},
                )
                context.set_default_timeout(20_000)
                context.add_init_script(RELAY_ONLY)
                contexts.append(context)
            request.node.coturn_log = turn.log  # the throughput test reads coturn's counters
            yield server, contexts, local_url(created["activation_url"], server)
        finally:
            for context in contexts:
                context.close()
            server.process.terminate()
            server.process.wait(timeout=10)


def received(page: Page) -> dict[str, Any]:
    stats: dict[str, Any] = page.evaluate("() => window.bocageCall ? window.bocageCall.received() : null")
    return stats or {"audio": 0, "video": 0, "relayed": False}


def flowing(page: Page) -> bool:
    got = received(page)
    return bool(got["audio"] > 0 and got["video"] > 0 and got["relayed"])


def call_once(owner: Page, agent: Page) -> float:
    """The owner calls, the agent answers; both receive audio and video through the relay.
    Returns the ms from the call to the owner's first remote video frame."""
    owner.get_by_role("button", name="Appeler").click()
    expect(owner.get_by_role("dialog", name="Appel")).to_be_visible()
    ring = agent.get_by_role("alertdialog", name=re.compile("Maire Dupuis vous appelle"))
    expect(ring).to_be_visible()
    ring.get_by_role("button", name="Décrocher").click()
    for page in (owner, agent):
        expect(page.locator(".call-view video.remote")).to_have_count(1)
    wait_for(lambda: flowing(owner) and flowing(agent), "audio and video through the relay, both ways", 40)
    wait_for(
        lambda: owner.evaluate("() => window.bocageCall.firstVideoMs") is not None, "a first video frame"
    )
    first: float = owner.evaluate("() => window.bocageCall.firstVideoMs")
    for button, kind in (("Couper le micro", "Audio"), ("Couper la caméra", "Video")):
        agent.get_by_role("button", name=button).click()
        expect(agent.get_by_role("button", pressed=True)).to_have_count(1 if kind == "Audio" else 2)
        enabled = f"() => window.bocageCall.local.get{kind}Tracks().map((t) => t.enabled)"
        assert agent.evaluate(enabled) == [False]
    owner.get_by_role("button", name="Raccrocher").click()
    for page in (owner, agent):
        expect(page.locator(".call-view")).to_have_count(0)
        expect(page.locator("#toast")).to_contain_text("Appel terminé")
    return first


def mayor_and_agent(contexts: Any, url: str, problems: list[str] | None = None) -> tuple[Page, Page]:
    """The mayor and an agent activated in the first two browsers, in the group "Visite de
    chantier"; their console problems collected in ``problems`` when given."""
    owner, agent = contexts[0].pages[0], contexts[1].pages[0]
    if problems is not None:
        for page in (owner, agent):
            watch_console(page, problems)
    activate(owner, url, "Maire Dupuis")
    activate(agent, invite(owner, "Agent Martin"), "Agent Martin")
    create_channel(owner, "Visite de chantier", "group")
    add_to_channel(owner, "Agent Martin")
    return owner, agent


def test_two_browsers_call_through_the_relay_and_hang_up(call_setup: Any) -> None:
    server, contexts, url = call_setup
    problems: list[str] = []
    owner, agent = mayor_and_agent(contexts, url, problems)

    times = [call_once(owner, agent) for _ in range(3)]
    shown = [round(t) for t in times]
    print(f"call to first remote video frame, ms: {shown}, median {statistics.median(times):.0f}")
    # The caller wrote each call in the channel, sealed: both read who joined and for how long.
    open_channel(agent, "Visite de chantier")
    for page in (owner, agent):
        summaries = page.locator(".messages .msg", has_text="📞 Appel de")
        expect(summaries).to_have_count(3)
        expect(summaries.first).to_contain_text("Maire Dupuis, Agent Martin")
    calls = [i for i in server.stored_items() if "call_id" in i and "started_at" in i]
    assert len(calls) == 3 and all(c["ended_at"] and c["participants"] == {} for c in calls)
    assert all(len(c["joined"]) == 2 for c in calls)
    stored = str(server.stored_items())
    signals = server.output().count('"action":"call"')
    print(f"signalling frames sent per call (both devices): {signals / 3:.1f}")
    assert "a=fingerprint" not in stored and "candidate:" not in stored and "ice-pwd" not in stored
    assert "a=fingerprint" not in server.output() and "candidate:" not in server.output()
    relay = "() => window.bocageCall.config.iceServers.find((s) => s.credential)"
    credential = owner.evaluate(f"{relay}.credential")
    assert len(credential) > 20 and credential not in stored and credential not in server.output()

    # Nobody answers: the caller hangs up when the ring runs out (3 s here), the callee's ring
    # stops, and the channel says the call went unanswered.
    for page in (owner, agent):
        page.evaluate("() => localStorage.setItem('bocage.calls.ring_ms', '3000')")
    owner.get_by_role("button", name="Appeler").click()
    expect(agent.get_by_role("alertdialog")).to_be_visible()
    expect(owner.get_by_text("Pas de réponse")).to_be_visible()
    expect(owner.locator(".call-view")).to_have_count(0)
    expect(agent.get_by_role("alertdialog")).to_have_count(0)
    expect(agent.locator(".messages .msg", has_text="📞 Appel sans réponse")).to_have_count(1)
    assert not problems, problems


def test_a_refused_microphone_says_why(call_setup: Any) -> None:
    _, contexts, url = call_setup
    owner = contexts[0].pages[0]
    activate(owner, url, "Maire Dupuis")
    create_channel(owner, "Bureau", "group")
    refuse = "() => Promise.reject(new DOMException('denied', 'NotAllowedError'))"
    owner.evaluate(f"() => {{ navigator.mediaDevices.getUserMedia = {refuse}; }}")
    owner.get_by_role("button", name="Appeler").click()
    view = owner.get_by_role("dialog", name="Appel")
    expect(view.get_by_role("alert")).to_contain_text("La caméra ou le micro sont refusés ou absents")
    view.get_by_role("button", name="Raccrocher").click()
    expect(view).to_have_count(0)


def test_a_free_organisation_is_told_why_it_cannot_call(tmp_path: Path, new_context: Any) -> None:
    data = tmp_path / "data"
    created = bocage("org", "create", "Association", "--data", str(data))  # the free plan
    server = start_server(data, tmp_path / "serve.log")
    try:
        owner = new_context("owner").pages[0]
        activate(owner, local_url(created["activation_url"], server), "Maire Dupuis")
        create_channel(owner, "Bureau", "group")
        owner.get_by_role("button", name="Appeler").click()
        expect(owner.locator("#toast")).to_contain_text(
            re.compile("Appel impossible : les appels font partie")
        )
        expect(owner.locator("#toast")).to_contain_text("offre pro")
        expect(owner.get_by_role("dialog", name="Appel")).to_have_count(0)
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


def local_url(url: str, server: Server) -> str:
    """An activation URL the CLI printed for the default address, pointed at the test's server."""
    encoded = server.url.replace(":", "%3A").replace("/", "%2F")
    return url.replace("http://127.0.0.1:8000", server.url).replace("http%3A%2F%2F127.0.0.1%3A8000", encoded)


def sent_caps(page: Any) -> dict[str, list[int]]:
    """The bitrate caps on what this device sends, per kind, over every peer connection."""
    caps: dict[str, list[int]] = page.evaluate(
        """() => {
          const caps = { audio: [], video: [] };
          for (const { pc } of window.bocageCall.peers.values()) {
            for (const s of pc.getSenders()) {
              if (s.track) caps[s.track.kind].push(...s.getParameters().encodings.map((e) => e.maxBitrate));
            }
          }
          return caps;
        }"""
    )
    return caps


def capped(page: Any, audio: list[int], video: list[int]) -> Callable[[], bool]:
    return lambda: sent_caps(page) == {"audio": audio, "video": video}


def test_a_third_participant_joins_the_mesh_and_leaves(call_setup: Any) -> None:
    _, contexts, url = call_setup
    owner, agent, third = (c.pages[0] for c in contexts)
    activate(owner, url, "Maire Dupuis")
    activate(agent, invite(owner, "Agent Martin"), "Agent Martin")
    activate(third, invite(owner, "Claire Secrétaire"), "Claire Secrétaire")
    create_channel(owner, "Conseil", "group")
    add_to_channel(owner, "Agent Martin")
    add_to_channel(owner, "Claire Secrétaire")

    owner.get_by_role("button", name="Appeler").click()
    for page in (agent, third):  # both rung; they answer one after the other
        page.get_by_role("alertdialog").get_by_role("button", name="Décrocher").click()
        expect(page.get_by_role("dialog", name="Appel")).to_be_visible()
    for page in (owner, agent, third):  # a mesh: each sees the two others
        expect(page.locator(".call-view video.remote")).to_have_count(2)
    wait_for(lambda: all(flowing(p) for p in (owner, agent, third)), "media between all three", 40)
    # Each device shares its uplink's video budget between the two streams it sends.
    for page in (owner, agent, third):
        wait_for(capped(page, audio=[40_000] * 2, video=[1_250_000] * 2), "caps for 3")
    third.get_by_role("button", name="Raccrocher").click()
    expect(third.locator(".call-view")).to_have_count(0)
    for page in (owner, agent):  # the two others go on together, with the whole budget each
        expect(page.locator(".call-view video.remote")).to_have_count(1)
        wait_for(capped(page, audio=[40_000], video=[1_500_000]), "caps for 2")
    owner.get_by_role("button", name="Raccrocher").click()
    for page in (owner, agent):
        expect(page.locator(".call-view")).to_have_count(0)


def inbound_video(page: Page) -> dict[str, Any]:
    """The received video as getStats says: frame size and the receiving track's id."""
    found: dict[str, Any] = page.evaluate(
        """async () => {
          for (const { pc } of window.bocageCall.peers.values()) {
            const stats = await pc.getStats();
            for (const s of stats.values()) {
              if (s.type === 'inbound-rtp' && s.kind === 'video' && s.frameWidth) {
                return { width: s.frameWidth, height: s.frameHeight, track: s.trackIdentifier };
              }
            }
          }
          return { width: 0, height: 0, track: null };
        }"""
    )
    return found


def wide(page: Page) -> bool:
    """The received video is a 16:9 screen (Chromium's fake one), not the 4:3 fake camera."""
    got = inbound_video(page)
    return bool(got["height"] and got["width"] / got["height"] > 1.6)


SHARE = "Partager l\u2019écran"


def test_a_shared_screen_replaces_the_camera_and_gives_it_back(call_setup: Any) -> None:
    """With --use-fake-device-for-media-stream and --use-fake-ui-for-media-stream, Debian's
    Chromium answers getDisplayMedia with a fake 1280x720 monitor ("screen:…") without asking."""
    _, contexts, url = call_setup
    problems: list[str] = []
    owner, agent = mayor_and_agent(contexts, url, problems)
    owner.get_by_role("button", name="Appeler").click()
    agent.get_by_role("alertdialog").get_by_role("button", name="Décrocher").click()
    wait_for(lambda: flowing(agent) and inbound_video(agent)["width"] > 0, "the camera at the agent", 40)
    camera = inbound_video(agent)
    assert camera["width"] / camera["height"] < 1.4  # the fake camera, 4:3
    sdp = "() => [...window.bocageCall.peers.values()][0].pc.localDescription.sdp"
    negotiated = owner.evaluate(sdp)

    owner.get_by_role("button", name=SHARE).click()
    expect(owner.get_by_role("button", name="Arrêter le partage")).to_have_attribute("aria-pressed", "true")
    wait_for(lambda: wide(agent), "the owner's screen at the agent", 30)
    sent = "() => [...window.bocageCall.peers.values()][0].pc.getSenders().map((s) => s.track?.label || '')"
    assert any(label.startswith("screen:") for label in owner.evaluate(sent))
    assert inbound_video(agent)["track"] == camera["track"]  # the same track, new frames
    assert owner.evaluate(sdp) == negotiated  # replaceTrack: no renegotiation

    owner.get_by_role("button", name="Arrêter le partage").click()
    expect(owner.get_by_role("button", name=SHARE)).to_have_attribute("aria-pressed", "false")
    wait_for(lambda: not wide(agent), "the owner's camera back at the agent", 30)
    assert owner.evaluate("() => window.bocageCall.screen") is None

    # The browser's own "stop sharing" ends the screen's track: the camera comes back too.
    owner.get_by_role("button", name=SHARE).click()
    wait_for(lambda: wide(agent), "the screen again", 30)
    owner.evaluate("() => window.bocageCall.screen.getVideoTracks()[0].dispatchEvent(new Event('ended'))")
    expect(owner.get_by_role("button", name=SHARE)).to_be_visible()
    wait_for(lambda: not wide(agent), "the camera back after the browser's stop", 30)
    owner.get_by_role("button", name="Raccrocher").click()
    expect(agent.locator(".call-view")).to_have_count(0)
    assert not problems, problems


USAGE = re.compile(r"session (\d+): (peer )?usage: .*?rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


def relayed_bytes(log: Path) -> dict[str, int]:
    """What coturn counted for its closed sessions (verbose log, one "usage" line for the
    client side and one "peer usage" line for the relay side of each allocation)."""
    totals = {"from_clients": 0, "to_clients": 0, "to_peers": 0, "from_peers": 0, "sessions": 0}
    for _session, peer, _rp, rb, _sp, sb in USAGE.findall(log.read_text()):
        if peer:
            totals["from_peers"] += int(rb)
            totals["to_peers"] += int(sb)
        else:
            totals["sessions"] += 1
            totals["from_clients"] += int(rb)
            totals["to_clients"] += int(sb)
    return totals


def test_coturn_measures_the_relay_throughput_of_a_two_party_call(
    call_setup: Any, request: pytest.FixtureRequest
) -> None:
    """A 2-party call forced through the relay for 20 s: coturn's own counters (logged when each
    allocation closes) give the bytes it relayed; printed per second (pytest -s)."""
    _, contexts, url = call_setup
    log: Path = request.node.coturn_log
    owner, agent = mayor_and_agent(contexts, url)
    assert relayed_bytes(log)["sessions"] == 0
    owner.get_by_role("button", name="Appeler").click()
    answered = time.monotonic()
    agent.get_by_role("alertdialog").get_by_role("button", name="Décrocher").click()
    wait_for(lambda: flowing(owner) and flowing(agent), "audio and video through the relay, both ways", 40)
    time.sleep(20)
    received = [received_bytes(p) for p in (owner, agent)]
    owner.get_by_role("button", name="Raccrocher").click()
    seconds = time.monotonic() - answered
    expect(agent.locator(".call-view")).to_have_count(0)
    wait_for(lambda: relayed_bytes(log)["from_peers"] > 0, "coturn's usage lines on closing", 30)
    time.sleep(2)  # every allocation of both browsers closes within a moment of the hang-up
    counted = relayed_bytes(log)
    relayed = counted["to_clients"]  # media the relay delivered to the two browsers
    per_second = relayed / seconds
    print(
        f"coturn, 2-party call through the relay for {seconds:.1f} s: {counted['sessions']} allocations, "
        f"{counted['from_clients']} B from clients, {counted['to_peers']} B to peers, "
        f"{counted['from_peers']} B from peers, {relayed} B to clients: {per_second / 1000:.0f} kB/s "
        f"({per_second * 8 / 1e6:.2f} Mbit/s) relayed to the two devices; "
        f"getStats bytes received: {received}"
    )
    # Both directions went through coturn: what the browsers received (RTP payload counted by
    # getStats) is at most what coturn delivered (that plus SRTP, RTP and TURN headers, RTCP).
    assert relayed >= sum(received) > 0
    # Within the caps (1.5 Mbit/s video + 40 kbit/s audio each way), with room for headers.
    assert per_second * 8 < 2 * (1_500_000 + 40_000) * 1.3

    # The call's participant-minutes (2 x ~20 s) are on the owner's impact page, with the source.
    owner.get_by_role("link", name="Impact").click()
    org = owner.locator("section[aria-labelledby=impact-org]")
    minutes = org.locator(".org-kpis .kpi", has_text="minutes d\u2019appel")
    expect(minutes.locator(".kpi-value")).to_have_text("1")
    expect(org.locator(".org-kpis .kpi", has_text="de CO2e émis par les appels")).to_be_visible()
    source = owner.locator("section[aria-labelledby=impact-sources] li", has_text="Appel vidéo")
    expect(source).to_contain_text("Obringer")
    expect(source.get_by_role("link")).to_have_attribute(
        "href", "https://doi.org/10.1016/j.resconrec.2020.105389"
    )


def received_bytes(page: Page) -> int:
    got = received(page)
    return int(got["audio"] + got["video"])


def test_answered_elsewhere_a_members_other_device_stops_ringing(call_setup: Any) -> None:
    """The agent has a laptop and a linked tablet: both ring; answering on the laptop closes the
    tablet's ring ("Répondu sur un autre appareil"), declining on the tablet the laptop's."""
    _, contexts, url = call_setup
    problems: list[str] = []
    owner, laptop, tablet = (c.pages[0] for c in contexts)
    for page in (owner, laptop, tablet):
        watch_console(page, problems)
    activate(owner, url, "Maire Dupuis")
    activate(laptop, invite(owner, "Agent Martin"), "Agent Martin")
    laptop.get_by_role("link", name="Cet appareil").click()
    laptop.get_by_role("button", name="Créer un lien pour un autre appareil").click()
    activate(tablet, laptop.locator("#activation-url").input_value(), None)
    create_channel(owner, "Visite de chantier", "group")
    add_to_channel(owner, "Agent Martin")

    owner.get_by_role("button", name="Appeler").click()
    rings = [
        p.get_by_role("alertdialog", name=re.compile("Maire Dupuis vous appelle")) for p in (laptop, tablet)
    ]
    for ring in rings:
        expect(ring).to_be_visible()
    rings[0].get_by_role("button", name="Décrocher").click()
    expect(rings[1]).to_have_count(0)
    expect(tablet.locator("#toast")).to_contain_text("Répondu sur un autre appareil")
    expect(tablet.locator(".call-view")).to_have_count(0)  # it joined nothing
    wait_for(lambda: flowing(owner) and flowing(laptop), "the call on the laptop", 40)
    owner.get_by_role("button", name="Raccrocher").click()
    expect(laptop.locator(".call-view")).to_have_count(0)

    owner.get_by_role("button", name="Appeler").click()
    for ring in rings:
        expect(ring).to_be_visible()
    rings[1].get_by_role("button", name="Refuser").click()
    expect(rings[0]).to_have_count(0)
    expect(laptop.locator("#toast")).to_contain_text("Refusé sur un autre appareil")
    expect(owner.locator("#toast")).to_contain_text("Agent Martin a refusé l\u2019appel")
    owner.get_by_role("button", name="Raccrocher").click()
    assert not problems, problems
