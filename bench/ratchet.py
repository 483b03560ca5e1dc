"""Opening messages with the sender-key ratchet, in the CLI's Python and the web client's JS.

One sender seals ``--count`` messages (1,000) under its chain; a reader that received the chain's
state at index 0 opens them all. For each client:

- cold: a fresh ring, opening in order: each message derives its key (two HMAC-SHA256), then
  the signature is verified and the content decrypted and label-checked;
- warm: the same messages read again (history), their keys kept in the ring;
- reverse: a fresh ring reading the newest first, so the first message derives every key
  before it and the rest come from kept keys (the worst order within the 2,000 window).

Python runs ``SenderKeyRing.open_with`` + ``open_message`` in process; JS runs ``ratchet.js``
``openWith`` + ``wire.js`` ``openMessage`` under node (tests/browser/wire_harness.mjs), WebCrypto
for HMAC, without IndexedDB (the browser adds one transaction per message on top).

    python bench/ratchet.py [--count 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bocage.client.crypto import new_message_id, open_message, open_sender_key, seal_message, seal_sender_key
from bocage.client.profile import DeviceKeys
from bocage.client.ratchet import SenderKeyRing
from tests.wire_js import js, spec

CHANNEL = "c_benchbenchbench"
NOW = 1_800_000_000


def sealed_messages(sender: DeviceKeys, ring: SenderKeyRing, count: int) -> list[dict[str, Any]]:
    out = []
    for seq in range(1, count + 1):
        message_id = new_message_id()
        index, key = ring.next_key(CHANNEL, 0, message_id, NOW)
        envelope = seal_message(
            sender,
            key,
            index=index,
            channel_id=CHANNEL,
            epoch=0,
            message_id=message_id,
            content={"type": "text", "text": f"Compte rendu du conseil, point {seq} : adopté à l'unanimité."},
            sent_at_ms=NOW * 1000 + seq,
        )
        stored = {"seq": seq, "stored_at": NOW, "expires_at": NOW + 90 * 86400, "sender_member": "m_bench"}
        out.append(envelope.model_dump(mode="json") | stored)
    return out


def _open(message: dict[str, Any], sign_public_key: str, key: bytes) -> dict[str, Any]:
    return open_message(message, key, sign_public_key)


def python_run(
    reader: DeviceKeys, sender: DeviceKeys, sealed: Any, messages: list[dict[str, Any]]
) -> dict[str, float]:
    def fresh() -> SenderKeyRing:
        ring = SenderKeyRing()
        chain_key, index = open_sender_key(reader, sealed, sender.box_public_key, CHANNEL)
        ring.add_received(CHANNEL, 0, sender.device_id, chain_key, index)
        return ring

    def read_all(ring: SenderKeyRing, batch: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        for m in batch:
            ring.open_with(
                CHANNEL,
                0,
                m["sender_device"],
                m["index"],
                seq=m["seq"],
                message_id=m["message_id"],
                expires_at=m["expires_at"],
                opener=partial(_open, m, sender.sign_public_key),
            )
        return (time.perf_counter() - started) * 1000

    ring = fresh()
    cold = read_all(ring, messages)
    warm = read_all(ring, messages)
    reverse = read_all(fresh(), messages[::-1])
    return {"cold_ms": cold, "warm_ms": warm, "reverse_ms": reverse}


def js_run(
    reader: DeviceKeys, sender: DeviceKeys, sealed: Any, messages: list[dict[str, Any]]
) -> dict[str, float]:
    result: dict[str, float] = js(
        "bench_open",
        recipient=spec(reader),
        sealed=sealed,
        sender_box_public_key=sender.box_public_key,
        sender_sign_public_key=sender.sign_public_key,
        channel_id=CHANNEL,
        messages=messages,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sender, reader = DeviceKeys.generate(), DeviceKeys.generate()
    ring = SenderKeyRing()
    sealed = seal_sender_key(
        sender, reader.device_id, reader.box_public_key, CHANNEL, 0, *ring.own_state(CHANNEL, 0)
    )
    messages = sealed_messages(sender, ring, args.count)
    print(f"opening {args.count} messages of one sender (median of {args.repeat} runs; messages/s)")
    print(f"{'client':<22}{'cold':>12}{'warm':>12}{'reverse':>12}")
    for name, run in (("Python (CLI)", python_run), ("JS (web, node)", js_run)):
        runs = [run(reader, sender, sealed, messages) for _ in range(args.repeat)]
        rates = {
            phase: args.count / (statistics.median(r[f"{phase}_ms"] for r in runs) / 1000)
            for phase in ("cold", "warm", "reverse")
        }
        print(f"{name:<22}" + "".join(f"{rates[p]:>12,.0f}" for p in ("cold", "warm", "reverse")))


if __name__ == "__main__":
    main()
