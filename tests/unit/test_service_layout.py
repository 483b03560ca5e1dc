"""Services speak in models: the storage layout belongs to chalicelib/adapters/records alone.

A service that builds a partition or sort key, names an item's ``pk``/``sk`` or imports the key
layout would tie a use case to one table design; this test points at the line that does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "chalicelib" / "services"
ENTRY_POINTS = [SERVICES.parent / "ws_api.py", SERVICES.parent / "jobs.py", SERVICES.parent.parent / "app.py"]
KEY_LITERAL = re.compile(
    r"""["'](pk|sk)["']"""  # an item's key attributes
    r"""|["'][A-Z_]+#"""  # a key prefix such as "CHAN#" or f"ORG#..."
    r"""|\bkeys\."""  # the key layout module
    r"""|records\.keys\b|records import keys"""
)


def _modules() -> list[Path]:
    return sorted(SERVICES.glob("*.py")) + ENTRY_POINTS


@pytest.mark.parametrize("module", _modules(), ids=lambda p: p.name)
def test_no_service_or_entry_point_builds_storage_keys(module: Path) -> None:
    offending = [
        f"{module.name}:{number}: {line.strip()}"
        for number, line in enumerate(module.read_text(encoding="utf-8").splitlines(), start=1)
        if KEY_LITERAL.search(line)
    ]
    assert offending == []


def test_the_guard_recognises_each_kind_of_key_building() -> None:
    for line in (
        'item = {"pk": pk, "sk": sk}',
        'f"CHAN#{channel_id}"',
        "keys.message(c, 1)",
        "from chalicelib.adapters.records import keys",
    ):
        assert KEY_LITERAL.search(line), line
    assert not KEY_LITERAL.search("self._messages.stored(channel_id, seq)")
