"""The web client's read path: Ed25519 verifications of message envelopes per message opened.

``bench/read_path.py`` times the CLI's; this counts what the browser does. `bocage serve` on a
fresh data directory, the mayor's CLI profile, and the secretary's device in Debian's Chromium
(Playwright, never a downloaded browser) in the mayor's group. With the secretary's page away,
the mayor's client sends ``--count`` (200) texts; the page then opens the group and reads them.
Every ``crypto.subtle.verify`` the page makes is counted by an init script, per message id when
the signed bytes are a message envelope's (canonical JSON starting ``{"channel_id":`` with a
``ciphertext``); certificates and log entries are counted apart. The app verifies with WebCrypto
(Chromium 137+): the bench stops if no envelope verification was seen.

    python bench/read_path_web.py [--count 200]

Printed: how many messages the page opened, the envelope
verifications per message (most, fewest, mean) and the other verifications. Then the channel
is opened again in the same page, from the device's cache, under Chromium's sampling profiler
(50 µs): the envelope verifications made then (none: kept messages are not verified again) and
the time spent judging the kept messages' senders again (docs/protocol.md 14.2, `judgeCached`)
beside the page's busy time while the channel opened.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import Page, expect, sync_playwright

from bocage.client.messenger import Messenger
from bocage.client.profile import Profile
from tests.browser.conftest import CHROMIUM_ARGS, chromium_path
from tests.browser.test_web_app import message, open_channel, secretary_in_group, town_hall

GROUP = "Conseil"
#: Counts the page's Ed25519 verifications: per message id for an envelope, in all otherwise.
COUNT_VERIFIES = """
(() => {
  if (typeof SubtleCrypto === 'undefined') return; // about:blank is no secure context
  const counted = { envelopes: {}, other: 0 };
  globalThis.__verifies = counted;
  const verify = SubtleCrypto.prototype.verify;
  SubtleCrypto.prototype.verify = function (algorithm, key, signature, data) {
    let id = null;
    try {
      const text = new TextDecoder().decode(data);
      const envelope = text.startsWith('{"channel_id":') && text.includes('"ciphertext":');
      if (envelope) id = JSON.parse(text).message_id;
    } catch {}
    if (id) counted.envelopes[id] = (counted.envelopes[id] || 0) + 1;
    else counted.other += 1;
    return verify.call(this, algorithm, key, signature, data);
  };
})();
"""


#: The functions that judge kept messages' senders again (web/js/messenger.js, trust.js).
JUDGING = {"judgeCached", "judgedAgain", "senderRefusal", "refusedSender"}


def from_the_cache(page: Page, last: str) -> dict[str, Any]:
    """The channel left for the list and opened again in the same page, profiled: everything
    it shows comes from the cache (the catch-up finds nothing new)."""
    page.goto(page.url.split("#")[0] + "#/")  # the route only: the same page and messenger
    cdp = page.context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 50})
    cdp.send("Profiler.start")
    open_channel(page, GROUP)
    expect(message(page, last)).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1000)  # the catch-up and its refresh
    profile: dict[str, Any] = cdp.send("Profiler.stop")["profile"]
    cdp.detach()
    return profile


def judging_ms(profile: dict[str, Any]) -> tuple[float, float]:
    """(ms sampled inside JUDGING, ms sampled busy at all) in a V8 CPU profile: a sample counts
    for the interval after it; a resumed async function has no caller frames, so any JUDGING
    frame on the sampled stack counts."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {child: n["id"] for n in profile["nodes"] for child in n.get("children", [])}

    def judging(node_id: int | None) -> bool:
        while node_id is not None:
            if nodes[node_id]["callFrame"]["functionName"] in JUDGING:
                return True
            node_id = parent.get(node_id)
        return False

    judged = busy = 0.0
    for sample, after in zip(profile["samples"], [*profile["timeDeltas"][1:], 0], strict=True):
        if nodes[sample]["callFrame"]["functionName"] in ("(idle)", "(program)"):
            continue
        busy += after
        if judging(sample):
            judged += after
    return judged / 1000, busy / 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="messages the mayor sends")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="bocage-read-web-") as tmp,
        town_hall(Path(tmp), "Mairie de Paimpol") as (_data, _town, mayor),
        sync_playwright() as api,
    ):

        def new_context(name: str) -> Any:
            context = api.chromium.launch_persistent_context(
                str(Path(tmp) / f"chromium-{name}"),
                executable_path=chromium_path(),
                headless=True,
                args=CHROMIUM_ARGS,
                locale="fr-FR",
            )
            context.set_default_timeout(60_000)
            context.add_init_script(COUNT_VERIFIES)
            return context

        secretary, site = secretary_in_group(mayor, new_context, problems, GROUP)
        app = secretary.url
        secretary.goto("about:blank")  # away while the mayor writes: nothing arrives live
        sender = Messenger(Profile(mayor))
        texts = [f"Point {i + 1} de l'ordre du jour" for i in range(args.count)]
        for text in texts:
            sender.send_text(site, text)
        secretary.goto(app)
        open_channel(secretary, GROUP)
        expect(message(secretary, texts[-1])).to_be_visible(timeout=120_000)
        counted: dict[str, Any] = secretary.evaluate("globalThis.__verifies")
        profile = from_the_cache(secretary, texts[-1])
        again: dict[str, Any] = secretary.evaluate("globalThis.__verifies")
        secretary.context.close()
    per_message = list(counted["envelopes"].values())
    if not per_message:
        raise SystemExit("read path web bench: no envelope verification seen (no WebCrypto Ed25519?)")
    print(f"Read path bench (web): Chromium, {args.count} messages sent, {len(per_message)} opened")
    print(
        f"  envelope verifications per message: most {max(per_message)}, fewest {min(per_message)}, "
        f"mean {statistics.mean(per_message):.2f}"
    )
    print(f"  other verifications (certificates, log entries): {counted['other']}")
    verified_again = sum(again["envelopes"].values()) - sum(counted["envelopes"].values())
    judging, busy = judging_ms(profile)
    print(
        f"  opened again from the cache: {verified_again} envelope verifications; judging the "
        f"{args.count} kept senders again {judging:.1f} ms of {busy:.1f} ms busy"
    )
    if problems:
        print(f"  page problems: {problems}")


if __name__ == "__main__":
    main()
