"""bench/followers.py at a tiny size, so that it cannot rot: its figures must agree with one
another and with what the issue claims (16, item 4) at any size."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest

from bocage.client.messenger import KEYS_PER_CALL
from chalicelib.services.delivery import CHUNK_SIZE


@pytest.fixture
def followers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bench's module; what it sets in the environment on import is undone after the test."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    # bench/ holds scripts, not a package: a static import would name bench/followers.py twice for mypy.
    return importlib.import_module("bench.followers")


def test_the_bench_pushes_a_tiny_town_through_the_queue_and_its_figures_add_up(followers: Any) -> None:
    # 20 followers, 2 online: past an inline limit of 1, the pushes take the queue path
    figures = followers.run(20, 0.1, inline_limit=1)
    assert figures["online"] == 2 and figures["subscribed"] == 18
    assert figures["sealed"] == figures["keyed"] == 20  # every follower's device finds its key
    assert figures["put_calls"] == math.ceil(20 / KEYS_PER_CALL)
    assert figures["inline_pushes"] == 0  # the POST pushed nothing itself
    assert figures["queued_chunks"] == math.ceil(2 / CHUNK_SIZE) and figures["queued_wakes"] == 1
    assert figures["pushes"] == figures["pushed_connections"] == 2  # once to each online follower
    assert figures["web_pushes"] == 18  # and a Web Push to each offline one
    assert figures["queue_delivered"] == figures["pushes"] + figures["web_pushes"]
    assert figures["send_writes"] == 4  # the nonce, the sequence number, the id marker, the message


def test_below_the_inline_limit_the_post_pushes_and_only_web_push_is_queued(followers: Any) -> None:
    figures = followers.run(20, 0.1, subscribed=0.5)
    assert figures["inline_pushes"] == figures["pushes"] == 2
    assert figures["queued_chunks"] == 0 and figures["queued_wakes"] == 1
    assert figures["web_pushes"] == figures["subscribed"] == 9
    assert figures["send_writes"] == 4
