"""The monthly billing job: wall time and Store operations for 1,000 organisations of 50 members.

What it prints, for ``--orgs`` organisations (all ``pro``, the most work: every one is billed) of
``--members`` members each, on the embedded SQLite store wrapped in a ``CountingStore``:

1. **First run** of ``run_month`` for a closed month: every invoice computed from membership and
   device history, drafted, numbered (claim + stamp), the donation ledger and the running totals.
2. **Rerun** of the same month: the no-op an hourly or retried schedule costs.
3. **Dry run** of the current month to date (computes everything, writes nothing).
4. ``ImpactService.record_message``: Store operations per message sent (whatever its recipients).

Each figure is the median over ``--runs`` consecutive months on the same seeded store (month 1,
2, 3...: each a real first run, with the invoice register growing), with the per-run values.

Seeding goes straight through the Store (``batch_write`` of the very items the organisation
service writes: ``ORG#o / META``, the ``ORGS`` registry, ``ORG#o / MEMBER#m`` and
``ORG#o / MEMBER#m#DEVICE#d``), for speed. Each organisation: 50 members with one device each,
5 of them with a second device, 3 removed (devices revoked) and 2 joining mid-month, so the
history the job reads has churn; and one impact counter per month. The per-device auth records
(``DEVICE#d / META``) are not written: billing never reads them.

    python bench/billing.py [--orgs 1000] [--members 50] [--runs 3]

No figure here is asserted: timings are noisy on a small machine, so quote medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.adapters.clocks import ManualClock
from chalicelib.adapters.counting_store import CountingStore
from chalicelib.adapters.records import keys
from chalicelib.adapters.sqlite_store import SqliteStore
from chalicelib.billing_settings import BillingSettings
from chalicelib.domain.billing import month_end, month_start, next_month
from chalicelib.domain.ids import new_id
from chalicelib.domain.organisation import Device, Member, MemberStatus, Organisation, Plan, Role
from chalicelib.ports import Item
from chalicelib.services.billing import BillingRun, BillingService
from chalicelib.services.event_bus import EventBus
from chalicelib.services.impact import ImpactService
from chalicelib.services.organisations import OrganisationService

FIRST_MONTH = "2027-03"
DAY = 86_400
WRITE_OPS = ("put", "delete", "increment", "batch_put", "batch_delete")


def seed(store: SqliteStore, orgs: int, members: int, months: list[str]) -> int:
    """Write the organisations' history; return the number of items written."""
    created = month_start(FIRST_MONTH) - 40 * DAY
    written = 0
    for index in range(orgs):
        org = Organisation(org_id=new_id("o"), name=f"Commune {index}", plan=Plan.PRO, created_at=created)
        items: list[Item] = [
            keys.record(keys.org(org.org_id), org.model_dump(mode="json")),
            keys.record(keys.org_registry(org.org_id), {"org_id": org.org_id}),
        ]
        for m in range(members):
            joined = created + 3600 if m < members - 2 else month_start(FIRST_MONTH) + 10 * DAY
            removed = month_start(FIRST_MONTH) + 20 * DAY if 2 <= m < 5 else None
            member = Member(
                org_id=org.org_id,
                member_id=new_id("m"),
                display_name=f"Agent {m}",
                role=Role.OWNER if m == 0 else Role.MEMBER,
                status=MemberStatus.REMOVED if removed else MemberStatus.ACTIVE,
                created_at=joined - 60,
                activated_at=joined,
                removed_at=removed,
            )
            items.append(
                keys.record(keys.member(org.org_id, member.member_id), member.model_dump(mode="json"))
            )
            for d in range(2 if 5 <= m < 10 else 1):
                device = Device(
                    device_id=new_id("d"),
                    org_id=org.org_id,
                    member_id=member.member_id,
                    name=f"device {d}",
                    sign_public_key="A" * 43,
                    box_public_key="B" * 43,
                    created_at=joined + d * DAY,
                    revoked_at=removed,
                )
                items.append(
                    keys.record(
                        keys.member_device(org.org_id, member.member_id, device.device_id),
                        device.model_dump(mode="json"),
                    )
                )
        for month in months:
            pk, sk = keys.org_impact(org.org_id, month)
            items.append({"pk": pk, "sk": sk, "messages": 120, "notifications": 120 * (members - 1)})
        store.batch_write(items)
        written += len(items)
    return written


def ops(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {counts[name]}" for name in sorted(counts))


Timings = dict[str, list[tuple[float, Counter[str]]]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


def bench_month(
    billing: BillingService, store: CountingStore, clock: ManualClock, month: str, orgs: int, results: Timings
) -> BillingRun:
    """Dry run mid-month, first run and rerun after the month closes; time and count each."""
    clock.set(month_start(month) + 15 * DAY)
    store.reset()
    t0 = time.perf_counter()
    dry = billing.run_month(month, dry_run=True)
    results["dry"].append((time.perf_counter() - t0, store.reset()))

    clock.set(month_end(month) + 3600)
    t0 = time.perf_counter()
    run = billing.run_month(month)
    results["first"].append((time.perf_counter() - t0, store.reset()))
    assert run.issued == orgs, run.public()["not_billed"]
    t0 = time.perf_counter()
    again = billing.run_month(month)
    results["rerun"].append((time.perf_counter() - t0, store.reset()))
    assert again.issued == 0 and again.existing == orgs
    first, last = run.invoices[0].number, run.invoices[-1].number
    print(
        f"{month}: {run.issued} invoices, numbers {first}..{last} (in registry order), "
        f"revenue {run.revenue_cents / 100:.2f} EUR, "
        f"{run.invoices[0].billable_users} billable users in the first org; "
        f"dry run to the 16th: {len(dry.invoices)} invoices"
    )
    return run


def print_register(billing: BillingService) -> None:
    register = billing.invoice_register()
    gapless = [r["number"] for r in register] == list(range(1, len(register) + 1))
    print(f"\nregister: {len(register)} numbers, gapless: {gapless}")
    print(f"trees planted: {billing.trees_planted()}\n")


def print_timings(label: str, runs: list[tuple[float, Counter[str]]], orgs: int) -> None:
    """Median time over the runs, and the Store operations of the run with the median total."""
    times = [t for t, _ in runs]
    totals = [sum(c.values()) for _, c in runs]
    middle = sorted(range(len(totals)), key=totals.__getitem__)[len(totals) // 2]
    median_counts = runs[middle][1]
    reads = median_counts["get"] + median_counts["query"]
    writes = sum(median_counts[op] for op in WRITE_OPS)
    print(f"{label}:")
    print(
        f"  time: median {statistics.median(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)}), "
        f"{statistics.median(times) / orgs * 1000:.2f} ms per organisation"
    )
    print(
        f"  store operations (median run): {sum(median_counts.values())} = {ops(median_counts)}; "
        f"per organisation: {reads / orgs:.2f} reads, {writes / orgs:.2f} writes"
    )


def main() -> None:
    args = parse_args()
    months = [FIRST_MONTH]
    while len(months) < args.runs:
        months.append(next_month(months[-1]))
    print(f"Billing job: {args.orgs} organisations x {args.members} members, SQLite, {args.runs} months")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs\n")

    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(month_start(FIRST_MONTH))
        inner = SqliteStore(os.path.join(tmp, "bench.sqlite3"), clock)
        started = time.perf_counter()
        items = seed(inner, args.orgs, args.members, months)
        print(f"seeded {items} items in {time.perf_counter() - started:.1f} s\n")
        store = CountingStore(inner)
        orgs = OrganisationService(store, clock, EventBus())
        settings = BillingSettings()
        billing = BillingService(store, clock, orgs, settings)
        impact = ImpactService(store, clock, orgs, settings)

        results: Timings = {"first": [], "rerun": [], "dry": []}
        for month in months:
            run = bench_month(billing, store, clock, month, args.orgs, results)
        print_register(billing)
        for label, key in (
            ("first run (bills every organisation)", "first"),
            ("rerun (month already closed)", "rerun"),
            ("dry run (current month to date)", "dry"),
        ):
            print_timings(label, results[key], args.orgs)

        org_id = run.invoices[0].org_id
        store.reset()
        impact.record_message(org_id, clock.now(), recipients=49)
        print(f"\nrecord_message (49 recipients): {ops(store.reset())} per message")
        inner.close()


if __name__ == "__main__":
    main()
