"""The CLI's read path: what opening a page of stored messages costs on the reading device.

One member sends ``--count`` text messages (200, 100 characters of French) in a group; a
second member's ``Messenger.open`` opens each stored message as ``Messenger.read`` does:
the certified sender, the envelope's signature, the sender's standing in the channel, the key
from the ratchet, decryption and the labels. A first pass fetches the sender's key and the
membership log (not timed); then ``--runs`` (5) timed passes open the same messages again, their
keys kept in the ring, so the figure is the client's work per message, not the network's.

Printed: the median time of a pass and per message, and the Ed25519 verifications per message
(every ``VerifyKey.verify`` during one more, untimed pass, certificates included): most of the
read path's cost, so a message's envelope should be verified once.

How: the real Chalice app in process over a SQLite file (``deployed`` from bench/retention.py),
the messages sealed and signed by the sender's client library and handed to the messaging
service, read back over the signed API (``GET /channels/{id}/messages``, 100 a page).

    python bench/read_path.py [--count 200] [--runs 5]

No figure here is asserted: timings are noisy on a small machine, so quote medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nacl.signing import VerifyKey
from retention import deployed, require, text_content  # the sibling bench script's set-up

from bocage.client.messenger import Messenger

PAGE = 100  # the server's largest page


def stored_page(reader: Messenger, channel_id: str, count: int) -> list[dict[str, Any]]:
    """The channel's stored messages as the server serves them, oldest first."""
    messages: list[dict[str, Any]] = []
    since = 0
    while len(messages) < count:
        page = reader.client.messages(channel_id, since=since, limit=PAGE)
        messages.extend(dict(m) for m in page["messages"])
        if not page["more"]:
            break
        since = int(page["cursor"])
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="messages opened per pass")
    parser.add_argument("--runs", type=int, default=5, help="timed passes to take the median of")
    args = parser.parse_args()
    if args.count < 1 or args.runs < 1:
        parser.error("--count and --runs must be at least 1")
    with deployed("sqlite") as d:
        channel = d.open_channel("Conseil")
        for i in range(args.count):
            d.send_direct(channel, text_content(100, i))
        reader = d.reader
        reader.trust.changed(channel.channel_id)
        stored = stored_page(reader, channel.channel_id, args.count)
        require(len(stored) == args.count, f"{len(stored)} messages stored, {args.count} sent")
        first = [reader.open(m) for m in stored]  # fetches the key and the log: not timed
        require(all(m["verified"] for m in first), f"a message did not open: {first[0]}")
        times: list[float] = []
        for _ in range(args.runs):
            start = time.perf_counter()
            opened = [reader.open(m) for m in stored]
            times.append(time.perf_counter() - start)
            require(all(m["verified"] for m in opened), "a message did not open again")
        # one more pass, untimed, counting every Ed25519 verification (PyNaCl still does each one)
        with patch.object(VerifyKey, "verify", autospec=True, side_effect=VerifyKey.verify) as verify:
            counted = [reader.open(m) for m in stored]
        require(all(m["verified"] for m in counted), "a message did not open in the counted pass")
    median = statistics.median(times)
    print(
        f"Read path bench: Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"{args.count} messages, {args.runs} passes"
    )
    runs = ", ".join(f"{t * 1000:.1f}" for t in times)
    print(f"  median pass:          {median * 1000:8.1f} ms  (runs: {runs})")
    print(f"  median per message:   {median / args.count * 1e6:8.1f} µs")
    print(f"  Ed25519 verifications per message: {verify.call_count / args.count:.2f}")


if __name__ == "__main__":
    main()
