"""The long fuzz run: schemathesis against a real `bocage serve`, every request signed (issue 19).

Starts `bocage serve` on loopback on a fresh SQLite store (activation limiter off, an operator
key configured), activates an owner and a member with the SDK, then generates ``--examples``
requests per operation of the server's /openapi.json, and ``--negative`` more that break it
(tests/fuzzing.py does the work; the short run of the same is tests/e2e/test_fuzz.py). Prints
requests, routes covered, statuses, server errors (5xx), answers outside the spec, and whether
the organisation still works afterwards; exits 1 on any failure.

    python bench/fuzz.py [--examples 320] [--negative 80] [--seed N]

320 examples per operation that fit the spec and 80 that break it on purpose (a 4xx expected):
over 12,000 requests (/health and /impact take no input, so one each), about 7 minutes on a
busy 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bocage.client.profile import OperatorKey  # noqa: E402
from tests.e2e.conftest import start_server  # noqa: E402
from tests.fuzzing import build_world, check_invariants, fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=320, help="generated requests per operation")
    parser.add_argument("--negative", type=int, default=80, help="more per operation, breaking the spec")
    parser.add_argument("--seed", type=int, default=None, help="a seed (default: derandomized)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        operator = OperatorKey.generate()
        server = start_server(
            work / "data",
            work / "serve.log",
            BOCAGE_OPERATOR_KEYS=operator.public_key,
            BOCAGE_ACTIVATION_RATE="0",
        )
        try:
            world = build_world(server.url, server.owner_url(), operator, work / "profiles")
            report = fuzz(world, args.examples, negative=args.negative, seed=args.seed)
            problems = check_invariants(world)
            tracebacks = server.output().count("Traceback")
        finally:
            server.process.terminate()
            server.process.wait(timeout=10)
    summary = {**report.summary(), "invariant_problems": problems, "tracebacks_in_log": tracebacks}
    print(json.dumps(summary, indent=2))
    print("requests per route:", json.dumps(dict(sorted(report.routes.items())), indent=2))
    for line in report.server_errors[:20] + report.violations[:20]:
        print("FAILURE", line)
    failed = report.server_errors or report.violations or problems or tracebacks
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
