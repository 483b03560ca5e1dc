"""A file in the web app (docs/protocol.md, 18): a CLI member sends the minutes to a group; the
mayor's browser shows the file's name and size from the sealed message and "Télécharger" gives
exactly the bytes sent, fetched encrypted and decrypted on the device."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, add_to_channel, create_channel, invite, message
from tests.e2e.conftest import Server

GROUP = "Conseil municipal"


def test_a_file_sent_from_the_cli_downloads_in_the_browser(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    problems: list[str] = []
    owner = new_context("owner", accept_downloads=True).pages[0]
    watch_console(owner, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    clerk = str(tmp_path / "clerk")
    cli("--profile", clerk, "activate", invite(owner, "Secrétariat"), "--name", "Secrétariat")
    create_channel(owner, GROUP, "group")
    add_to_channel(owner, "Secrétariat")
    group = owner.url.rsplit("/", 1)[1]
    minutes = tmp_path / "compte-rendu.txt"
    minutes.write_bytes(("Séance du 3 décembre : budget voté.\n" * 2000).encode())  # 78 kB: two chunks
    sent = cli("--profile", clerk, "send", group, "--file", str(minutes), "Le compte rendu")
    assert sent["attachment"]["name"] == "compte-rendu.txt"

    shown = message(owner, "Le compte rendu")
    expect(shown.locator(".file-name")).to_have_text("compte-rendu.txt")
    expect(shown.locator(".file-size")).to_have_text(f" · {round(minutes.stat().st_size / 1000)} ko")
    with owner.expect_download() as arriving:
        shown.get_by_role("button", name="Télécharger").click()
    download = arriving.value
    assert download.suggested_filename == "compte-rendu.txt"
    assert Path(download.path()).read_bytes() == minutes.read_bytes()
    assert not problems, problems
