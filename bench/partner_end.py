"""What an ended partnership's clean-up costs the store (docs/protocol.md, 22.6).

Two organisations partner; A's owner makes two groups holding ``--shared`` (5) of B's members
(3 and the rest); then ``--members`` (200) more members join each organisation, in no shared
group, and A ends the partnership with the end's request budget at 0, so the whole clean-up is
the scheduled job's: its store operations are printed (batch items count one each), for the
organisations without and with the extra members. They should not move: the job walks the
pair's index of shared memberships, never the organisations' members.

How: the real Chalice app in process over a SQLite file, the real clients signing everything.

    python bench/partner_end.py [--members 200] [--shared 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retention import BatchCountingStore, raw_store, require  # the sibling bench script's set-up

from bocage.client.messenger import Messenger
from bocage.client.profile import OperatorKey
from chalicelib import wiring
from chalicelib.adapters.clocks import ManualClock
from chalicelib.settings import Settings
from tests.support import RecordingMailer, RecordingPush, SignedApi, messenger_for

#: Write operations as CountingStore counts them (a batch's items one each).
WRITES = ("put", "delete", "increment", "batch_put", "batch_delete")


def clean_up_cost(extra: int, shared: int) -> Counter[str]:
    """The store operations of the job that takes ``shared`` of B's members out of A's groups."""
    from chalice.test import Client

    from app import app

    clock = ManualClock()
    operator = OperatorKey.generate()
    with raw_store("sqlite", clock) as raw, tempfile.TemporaryDirectory(prefix="bocage-end-") as profiles:
        store = BatchCountingStore(raw)
        settings = Settings(public_url="https://bench.invalid", operator_keys=(operator.public_key,))
        container = wiring.build(
            settings, store=store, clock=clock, mailer=RecordingMailer(), push=RecordingPush()
        )
        container.partner_ends.request_budget = 0
        wiring.use(container)
        try:
            with Client(app) as client:
                api = SignedApi(client.http, clock)
                a = _owner(api, operator, "Mairie", Path(profiles) / "a")
                b = _owner(api, operator, "Cabinet", Path(profiles) / "b")
                b.partners.accept(a.partners.invite()["code"])
                a.partners.listing()
                b.partners.listing()
                b_ids = [str(api.join(b.keys, f"Partenaire {i}")[1]["member_id"]) for i in range(shared)]
                groups = [str(a.create_channel("group", name)["channel_id"]) for name in ("Voirie", "École")]
                for i, member_id in enumerate(b_ids):
                    a.add_member(groups[0 if i < 3 else 1], member_id)
                for i in range(extra):
                    api.join(a.keys, f"Agent {i}")
                    api.join(b.keys, f"Salarié {i}")
                clock.advance(60)
                a.partners.end(b.trust.org_id)
                store.reset()
                report = container.partner_ends.run()
                cost = store.reset()
                require(report.members == shared, f"the job took out {report.members}, not {shared}")
                return cost
        finally:
            wiring.use(None)


def _owner(api: SignedApi, operator: OperatorKey, name: str, directory: Path) -> Messenger:
    created = api.create_org(operator, name)
    keys, reply = api.activate(created["activation_code"], "Responsable")
    require(reply.status == 201, f"activation answered {reply.status}: {reply.body}")
    owner: Messenger = messenger_for(api, keys, directory, dict(reply.body))
    return owner


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--shared", type=int, default=5)
    args = parser.parse_args()
    for extra in (0, args.members):
        cost = clean_up_cost(extra, args.shared)
        reads, writes = cost["get"] + cost["query"], sum(cost[op] for op in WRITES)
        detail = ", ".join(f"{op} {cost[op]}" for op in ("get", "query", *WRITES))
        shape = f"{extra:>4} more members each side, {args.shared} shared"
        print(f"{shape}: {reads} reads, {writes} writes ({detail})")


if __name__ == "__main__":
    main()
