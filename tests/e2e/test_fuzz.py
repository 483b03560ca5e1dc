"""Schemathesis against `bocage serve` on loopback, signed with real device keys (issue 19).

The short run of ``make test``: about 32 generated requests per operation, some breaking the
spec on purpose (about 1,000 in all, every route), 0 server errors, 0 answers outside the spec,
and the organisation still works afterwards. The long run is bench/fuzz.py.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import app
from bocage.client.profile import OperatorKey
from chalicelib.openapi import build_spec
from tests.e2e.conftest import Server, start_server
from tests.fuzzing import World, build_world, check_invariants, fuzz

pytestmark = pytest.mark.e2e
EXAMPLES_PER_ROUTE = 26  # inputs the spec allows
NEGATIVE_PER_ROUTE = 6  # inputs that break it: a 4xx expected


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Server, World]]:
    operator = OperatorKey.generate()
    srv = start_server(
        tmp_path / "data",
        tmp_path / "serve.log",
        BOCAGE_OPERATOR_KEYS=operator.public_key,
        BOCAGE_ACTIVATION_RATE="0",
    )
    try:
        yield srv, build_world(srv.url, srv.owner_url(), operator, tmp_path / "profiles")
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)


def test_the_server_serves_its_description(world: tuple[Server, World]) -> None:
    srv, _ = world
    with urllib.request.urlopen(f"{srv.url}/openapi.json", timeout=10) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
        served = json.loads(answer.read())
    assert served == json.loads(json.dumps(build_spec(app)))


def test_fuzzing_every_route_behind_authentication(world: tuple[Server, World]) -> None:
    srv, fuzzed = world
    report = fuzz(fuzzed, EXAMPLES_PER_ROUTE, negative=NEGATIVE_PER_ROUTE)
    summary = report.summary()
    print(json.dumps(summary))
    assert report.server_errors == [], report.server_errors[:5]
    assert report.violations == [], report.violations[:5]
    assert summary["routes_covered"] == sum(len(ops) for ops in build_spec(app)["paths"].values())
    assert report.requests >= 900
    # Past authentication: most answers are not 401, and some succeed on every kind of route.
    assert report.statuses[401] < report.requests / 2, summary
    assert sum(n for status, n in report.statuses.items() if status < 300) > 100, summary
    assert check_invariants(fuzzed) == []
    assert "Traceback" not in srv.output()
