"""Verifying a roster of 1,000 devices and sealing a sender key to each, in the CLI's Python.

An organisation of one root owner and ``--devices`` members (1,000), each invited with a ticket
signed by the owner's device and with one device certified by their identity key, as
``GET /members`` returns it; a channel whose signed membership log adds them all. Measured:

- cold: a fresh ``TrustView`` (nothing verified yet) decides, for every roster device, whether
  it may receive a key: member certificate, ticket, ticket issuer's chain, device certificate,
  low-order check; then the channel's membership log is replayed; then the chain state is sealed
  to each device (one X25519 box each);
- warm: the same view again (certificates verified once are kept, as a long-lived client or a
  ``bocage listen`` session keeps them), then sealing again.

Building the organisation (signing every certificate) is not measured. J adds the figure of the
web client's JS under node.

    python bench/trust.py [--devices 1000] [--repeat 3] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bocage.client.certs import TrustView
from bocage.client.crypto import seal_sender_key
from bocage.client.issuing import member_ticket, membership_entry
from bocage.client.profile import DeviceKeys
from chalicelib.domain.ids import new_id
from chalicelib.domain.membership_log import replay
from chalicelib.domain.statements import fingerprint, public_key_of, sign_statement

NOW = 1_800_000_000
CHANNEL = "c_benchbenchbenchb"


def _device_cert(org_id: str, member_id: str, keys: DeviceKeys, identity: bytes) -> dict[str, Any]:
    body = {
        "purpose": "bocage/device-cert/v2",
        "org_id": org_id,
        "member_id": member_id,
        "device_id": keys.device_id,
        "sign_public_key": keys.sign_public_key,
        "box_public_key": keys.box_public_key,
        "identity_key": public_key_of(identity),
        "ticket_key": None,
        "issued_at": NOW,
    }
    return sign_statement(body, identity)


def _row(cert: dict[str, Any]) -> dict[str, Any]:
    fields = ("device_id", "member_id", "sign_public_key", "box_public_key")
    return {**{f: cert[f] for f in fields}, "device_cert": cert, "ticket": None, "revocation": None}


def organisation(
    size: int,
) -> tuple[str, str, DeviceKeys, list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """(org id, root, owner device, members, devices, membership log) as the server would list them."""
    org_id, owner_id = new_id("o"), new_id("m")
    owner_ik, owner_device = secrets.token_bytes(32), DeviceKeys.generate()
    root_cert = sign_statement(
        {
            "purpose": "bocage/member-cert/v2",
            "org_id": org_id,
            "member_id": owner_id,
            "identity_key": public_key_of(owner_ik),
            "display_name": "Owner",
            "ticket_key": None,
            "root": True,
            "issued_at": NOW,
        },
        owner_ik,
    )
    members: list[dict[str, Any]] = [
        {"member_id": owner_id, "member_cert": root_cert, "ticket": None, "role_statements": []}
    ]
    devices = [_row(_device_cert(org_id, owner_id, owner_device, owner_ik))]
    log = [
        membership_entry(
            owner_device.signing,
            owner_device.device_id,
            org_id=org_id,
            channel_id=CHANNEL,
            previous=None,
            op="create",
            member_id=owner_id,
            role="author",
            kind="group",
            now=NOW,
        )
    ]
    for i in range(size):
        member_id, identity, keys = new_id("m"), secrets.token_bytes(32), DeviceKeys.generate()
        ticket = member_ticket(owner_device.signing, owner_device.device_id, org_id, "member", f"M{i}", NOW)
        cert = sign_statement(
            {
                "purpose": "bocage/member-cert/v2",
                "org_id": org_id,
                "member_id": member_id,
                "identity_key": public_key_of(identity),
                "display_name": f"M{i}",
                "ticket_key": ticket.statement["ticket_key"],
                "root": False,
                "issued_at": NOW,
            },
            ticket.seed,
        )
        members.append(
            {"member_id": member_id, "member_cert": cert, "ticket": ticket.statement, "role_statements": []}
        )
        devices.append(_row(_device_cert(org_id, member_id, keys, identity)))
        log.append(
            membership_entry(
                owner_device.signing,
                owner_device.device_id,
                org_id=org_id,
                channel_id=CHANNEL,
                previous=log[-1],
                op="add",
                member_id=member_id,
                role="member",
                now=NOW,
            )
        )
    return org_id, fingerprint(public_key_of(owner_ik)), owner_device, members, devices, log


def recipients(view: TrustView, devices: list[dict[str, Any]], members: set[str], me: str) -> dict[str, str]:
    """What Trust.recipients decides, without the I/O around it."""
    chosen = {}
    for d in devices:
        trusted = view.usable(d["device_id"])
        if d["device_id"] != me and trusted is not None and trusted.member_id in members:
            chosen[d["device_id"]] = trusted.box_public_key
    return chosen


def seal_all(sender: DeviceKeys, targets: dict[str, str]) -> int:
    chain = secrets.token_bytes(32)
    return len([seal_sender_key(sender, d, box, CHANNEL, 0, chain, 0) for d, box in targets.items()])


def run(size: int, clock: Any) -> dict[str, float]:
    org_id, root, owner, members, devices, log = organisation(size)
    t0 = clock()
    view = TrustView(org_id, root, members, devices)
    state, error = replay(log, view)
    assert state is not None and error is None and len(state.members) == size + 1
    targets = recipients(view, devices, set(state.members), owner.device_id)
    t1 = clock()
    assert seal_all(owner, targets) == size
    t2 = clock()
    warm_targets = recipients(view, devices, set(state.members), owner.device_id)
    t3 = clock()
    assert seal_all(owner, warm_targets) == size
    t4 = clock()
    return {"cold_verify": t1 - t0, "seal": t2 - t1, "warm_verify": t3 - t2, "warm_seal": t4 - t3}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="process CPU time (default: robust on a shared machine)",
    )
    args = parser.parse_args()
    parser_clock = {"cpu": time.process_time, "wall": time.perf_counter}[args.clock]
    runs = [run(args.devices, parser_clock) for _ in range(args.repeat)]
    print(f"Python, {args.devices} certified devices, median of {args.repeat} ({args.clock} time):")
    for name, label in (
        ("cold_verify", "cold: verify every chain and replay the membership log"),
        ("seal", "cold: seal the chain state to every device"),
        ("warm_verify", "warm: the same roster, certificates kept"),
        ("warm_seal", "warm: seal again"),
    ):
        print(f"  {label:<58} {statistics.median(r[name] for r in runs) * 1000:8.1f} ms")
    cold = statistics.median(r["cold_verify"] + r["seal"] for r in runs)
    warm = statistics.median(r["warm_verify"] + r["warm_seal"] for r in runs)
    print(f"  {'cold total':<58} {cold * 1000:8.1f} ms\n  {'warm total':<58} {warm * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
