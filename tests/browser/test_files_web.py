"""A file in the web app (docs/protocol.md, 18): a CLI member sends the minutes to a group; the
mayor's browser shows the file's name and size from the sealed message and "Télécharger" gives
exactly the bytes sent, fetched encrypted and decrypted on the device. The other way, the mayor
attaches a document and a phone photo in the browser: the CLI member gets the document's exact
bytes, and the photo made sober on the device (1,600 px at most, upright, no EXIF or location)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Page, expect

from bocage.client.filecrypt import blob_size
from chalicelib.domain.encoding import b64d
from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, add_to_channel, create_channel, invite, message, send
from tests.e2e.conftest import Server

GROUP = "Conseil municipal"


def mayor_and_clerk(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> tuple[Page, str, str, list[str]]:
    """The mayor in the browser and the secretariat's CLI profile in a group: (page, profile,
    group id, the page's console problems)."""
    problems: list[str] = []
    owner = new_context("owner", accept_downloads=True).pages[0]
    watch_console(owner, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    clerk = str(tmp_path / "clerk")
    cli("--profile", clerk, "activate", invite(owner, "Secrétariat"), "--name", "Secrétariat")
    create_channel(owner, GROUP, "group")
    add_to_channel(owner, "Secrétariat")
    return owner, clerk, owner.url.rsplit("/", 1)[1], problems


def test_a_file_sent_from_the_cli_downloads_in_the_browser(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    owner, clerk, group, problems = mayor_and_clerk(web_server, new_context, cli, tmp_path)
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

    # A server that serves more than the sealed message announces is cut off and refused.
    assert web_server.data is not None
    (blob,) = (web_server.data / "blobs").rglob(sent["attachment"]["blob_id"])
    blob.write_bytes(blob.read_bytes() + bytes(5_000_000))
    shown.get_by_role("button", name="Télécharger").click()
    expect(shown.locator(".file-status")).to_contain_text("Fichier refusé")
    assert not problems, problems


def phone_photo(path: Path) -> bytes:
    """A 3000 x 2000 JPEG as a phone takes it: EXIF with the camera, the place and an orientation
    that says "turn me upright" (a portrait photo stored landscape)."""
    image = Image.new("RGB", (3000, 2000), (40, 120, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    exif[0x8825] = {1: "N", 2: (48.0, 31.0, 12.0), 3: "W", 4: (2.0, 46.0, 30.0)}  # GPS
    image.save(path, "JPEG", quality=90, exif=exif)
    return path.read_bytes()


def test_a_document_and_a_photo_sent_from_the_browser_reach_the_cli(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    owner, clerk, group, problems = mayor_and_clerk(web_server, new_context, cli, tmp_path)

    plan = tmp_path / "plan du chantier.pdf"
    plan.write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 400)  # 102 kB, two chunks and more
    owner.locator("#composer-file").set_input_files(str(plan))
    expect(owner.locator(".attachment .file-name")).to_have_text("plan du chantier.pdf")
    send(owner, "Le plan révisé")
    expect(owner.locator(".attachment")).to_be_hidden()  # sent: the picker is empty again
    expect(message(owner, "Le plan révisé").locator(".file-name")).to_have_text("plan du chantier.pdf")

    cancel_an_upload(owner, plan)

    photo = tmp_path / "IMG_0042.jpeg"
    original = phone_photo(photo)
    owner.locator("#composer-file").set_input_files(str(photo))
    owner.get_by_role("button", name="Envoyer").click()  # a file alone, no text
    expect(owner.locator(".attachment")).to_be_hidden()
    thumbnail_then_photo(owner)

    shown = {m.get("text"): m for m in cli("--profile", clerk, "read", group)["messages"]}
    assert "Ne partira pas" not in shown
    out = tmp_path / "downloads"
    got = cli("--profile", clerk, "download", group, shown["Le plan révisé"]["message_id"], "--out", str(out))
    assert Path(got["path"]).read_bytes() == plan.read_bytes()
    assert Path(got["path"]).name == "plan du chantier.pdf"

    (photo_message,) = [m for m in shown.values() if m.get("text") == "" and m.get("message_id")]
    thumb_bytes = b64d(photo_message["content"]["thumb"])
    assert len(thumb_bytes) <= 8 * 1024 and thumb_bytes[:2] == b"\xff\xd8"
    assert "thumb" not in shown["Le plan révisé"]["content"]  # documents have none
    got = cli("--profile", clerk, "download", group, photo_message["message_id"], "--out", str(out))
    arrived = Path(got["path"])
    assert arrived.name == "IMG_0042.jpg"
    with Image.open(arrived) as image:
        assert image.format == "JPEG"
        assert image.size == (1067, 1600)  # upright (portrait) and 1,600 px on its longest side
        assert not image.getexif()  # no camera, no place, no orientation left
    assert arrived.stat().st_size < len(original) / 4

    # The console shows what the organisation's files take: both blobs, and the cancelled upload's
    # slot until it expires unused, against the plan's limits.
    owner.get_by_role("link", name="Administration").click()
    owner.get_by_role("link", name="Offre et factures").click()
    stored = sum(Path(p).stat().st_size for p in (web_server.data or Path()).glob("blobs/**/b_*"))
    used = stored + blob_size(plan.stat().st_size)
    expect(
        owner.get_by_text(f"{round(used / 1000)} ko utilisés sur 20 Go (un fichier : 25 Mo au plus)")
    ).to_be_visible()
    # ... and its admins choose how large photos leave the devices.
    owner.get_by_role("link", name="Organisation").click()
    owner.get_by_label("Taille des photos envoyées").select_option("1280")
    owner.get_by_role("button", name="Enregistrer").nth(1).click()
    expect(owner.get_by_text(re.compile(r"Les photos partiront en 1\W280 px"))).to_be_visible()
    assert cli("--profile", clerk, "whoami")["org"]["photo_max_side"] == 1280
    # The impact page shows the same bytes, as a footprint of their own beside what was avoided.
    owner.get_by_role("link", name="Impact").click()
    storage = owner.locator(".org-kpis .kpi").filter(has_text="de fichiers chiffrés conservés")
    expect(storage.locator(".kpi-value")).to_have_text(f"{round(used / 1000)} ko")
    sources = owner.locator("section[aria-labelledby=impact-sources] li")
    expect(sources.last).to_contain_text("Stockage des fichiers : 808 mg de CO2e par Go et par mois")
    assert not problems, problems


def cancel_an_upload(owner: Page, plan: Path) -> None:
    """An upload held by the network is cancelled: no message is sent."""
    held: list[Any] = []
    owner.route("**/blobs/**", lambda route: held.append(route))  # never answered
    owner.locator("#composer-file").set_input_files(str(plan))
    owner.get_by_label("Votre message").fill("Ne partira pas")
    with owner.expect_request("**/blobs/**"):  # the upload is under way (held)
        owner.get_by_role("button", name="Envoyer").click()
    owner.locator(".attachment").get_by_role("button", name="Annuler").click()
    expect(owner.get_by_role("alert").filter(has_text="Envoi annulé")).to_be_visible()
    assert held  # the upload had started
    for route in held:  # refused for good: a route left pending may go on to the server once unrouted
        route.abort()
    owner.unroute("**/blobs/**")
    owner.locator(".attachment").get_by_role("button", name="Retirer").click()
    owner.get_by_label("Votre message").fill("")


def thumbnail_then_photo(owner: Page) -> None:
    """Shown at once from the thumbnail inside the message; a tap fetches and shows the photo."""
    thumb = owner.get_by_role("button", name="Afficher la photo IMG_0042.jpg").locator("img")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [107, 160]
    owner.get_by_role("button", name="Afficher la photo IMG_0042.jpg").click()
    full = owner.locator("img.file-photo")
    expect(full).to_be_visible()
    assert full.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1067, 1600]
