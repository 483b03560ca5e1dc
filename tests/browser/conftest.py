"""Browser tests: Debian's Chromium driven by Playwright for Python, against a real `bocage serve`.

Chromium is never downloaded (no `playwright install`): the tests use /usr/bin/chromium (or
$BOCAGE_CHROMIUM) and FAIL, never skip, when it is missing, so CI cannot pass without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, start_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("BOCAGE_CHROMIUM", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"Chromium is missing at {path}: install Debian's package (apt-get install -y chromium) "
            "or set BOCAGE_CHROMIUM. The browser tests never download a browser and never skip."
        )
    return path


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[tuple[Any, str]]:
    """Playwright, and the Chromium it drives."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: pip install playwright (see requirements-dev.txt)")
    if not (ROOT / "node_modules" / "tweetnacl" / "nacl-fast.min.js").is_file():
        pytest.fail("node_modules is missing: run `npm ci` at the repository root (the app's tweetnacl)")
    executable = chromium_path()
    # Assertions wait as long as actions do: signing a channel's creation or a roster in the page
    # takes seconds on a loaded 2-core machine, and a too-short wait fails a working page.
    expect.set_options(timeout=15_000)
    with sync_playwright() as api:
        yield api, executable


@pytest.fixture
def new_context(playwright_api: tuple[Any, str], tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Open a browser context with its own fresh user-data-dir (one device each)."""
    api, executable = playwright_api
    opened: list[Any] = []

    def open_context(name: str, **options: Any) -> Any:
        profile = tmp_path / f"chromium-{name}"
        profile.mkdir()
        context = api.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            locale="fr-FR",
            timezone_id="Europe/Paris",
            viewport=options.pop("viewport", {"width": 1280, "height": 860}),
            **options,
        )
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Server]:
    """A real `bocage serve` whose retention job runs every second (re-stamping is visible)."""
    server = start_server(tmp_path / "data", tmp_path / "serve.log", BOCAGE_JOBS_INTERVAL="1")
    yield server
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def shoot(page: Any, artifacts: Path, name: str) -> Path:
    """A full-page screenshot kept as a test artefact."""
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_console(page: Any, problems: list[str]) -> None:
    """Collect page errors and CSP violations: the app must run clean under its policy."""
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))

    def on_console(message: Any) -> None:
        network = ("Failed to load resource", "WebSocket connection to")  # offline on purpose
        if message.type == "error" and not any(n in message.text for n in network):
            problems.append(f"console: {message.text}")

    page.on("console", on_console)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """The Python CLI (`python -m bocage ... --json`), as the interoperability witness."""
    from tests.e2e.conftest import bocage

    def run(*args: str) -> dict[str, Any]:
        return bocage(*args)

    return run
