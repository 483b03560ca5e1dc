"""Public tribes in the browser (docs/protocol.md, 16): the mayor makes a tribe public from its
members panel (a join link, its QR code, the follower count), a citizen joins from that link
with the CLI and reads what the mayor writes in the browser (web/js/followers.js verifies the
follower and seals the tribe's key to them), and a revoked link takes nobody more."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from bocage.client.poster import BOLD_EM, MM_TO_PT, TEXT_WIDTH_MM, poster_svg
from tests.browser.conftest import watch_console
from tests.browser.test_web_app import activate, create_channel, message, open_channel, send, wait_for
from tests.e2e.conftest import Server, bocage_fails
from tests.posters import assert_one_a4_page_with_sound_xref, decode_qr, runs_to_modules

TRIBE = "Vie du village"
POST = "Marché de Noël samedi sur la place"


def members_panel(owner: Page) -> None:
    owner.get_by_role("button", name="Membres").click()
    expect(owner.get_by_role("heading", name="Canal public")).to_be_visible()


def poster_matches_the_screen(owner: Any) -> None:
    """The A4 poster, made in the browser as the CLI makes it: the names, and the very code on the
    screen drawn 150 mm wide, 30 mm from each side and 75 mm from the top."""
    link = owner.get_by_role("link", name=re.compile(r"^Télécharger l.affiche A4 \(SVG\)$"))
    expect(link).to_have_attribute("download", f"{TRIBE} - affiche A4.svg")
    with owner.expect_download() as download:
        link.click()
    poster = Path(download.value.path()).read_text(encoding="utf-8")
    assert 'width="210mm" height="297mm" viewBox="0 0 210 297"' in poster
    org_name = owner.locator(".org-name").first.inner_text()
    assert org_name and f'font-weight="bold">{org_name}<' in poster
    assert f">{TRIBE}<" in poster and "Scannez pour suivre" in poster
    on_screen = owner.locator(".public-link svg.qr")
    size = int(on_screen.get_attribute("viewBox").split()[2])
    drawn = on_screen.locator("path").get_attribute("d")
    assert f'transform="translate(30 75) scale({150 / size:.6f})"' in poster and f'd="{drawn}"' in poster


# poster.js's PDF of words French needs beyond Latin-1, accents typed as combining marks, a
# character Helvetica lacks, and the parentheses a PDF string escapes.
POSTER_PDF_JS = """async () => {
  const { posterPdf } = await import('/app/js/poster.js');
  return Array.from(posterPdf('Cœur d\u2019E\u0301loi (5 €)', 'Fête — 漢', 'https://bocage.example/j'));
}"""


POSTER_SVG_JS = """async ([org, tribe]) => {
  const { posterSvg } = await import('/app/js/poster.js');
  return posterSvg(org, tribe, 'https://bocage.example/j');
}"""
LONG_ORG = "Communauté de communes du Pays de Landerneau-Daoulas"
LONG_TRIBE = "Informations pratiques pour les habitants des quatorze communes"


def sizes_in(svg: str) -> list[float]:
    """A poster's font sizes, top to bottom, in millimetres."""
    return [float(size) for size in re.findall(r'font-size="([\d.]+)"', svg)]


def pdf_poster_matches_the_screen(owner: Any, join_url: str) -> None:
    """The PDF beside it (docs/web.md): a sound one-page A4 file whose names are in the standard
    font's WinAnsi encoding, and whose code is the very one on the screen, drawn 150 mm wide, 30 mm
    from each side and 75 mm from the top, which decodes to the join link."""
    link = owner.get_by_role("link", name=re.compile(r"^Télécharger l.affiche A4 \(PDF\)$"))
    expect(link).to_have_attribute("download", f"{TRIBE} - affiche A4.pdf")
    with owner.expect_download() as download:
        link.click()
    pdf = Path(download.value.path()).read_bytes()
    assert_one_a4_page_with_sound_xref(pdf)
    org_name = owner.locator(".org-name").first.inner_text()
    for name, font in (
        (org_name, "F2"),
        (TRIBE, "F1"),
        ("Scannez pour suivre : ni e-mail, ni numéro de téléphone", "F1"),
    ):
        assert re.search(
            rb"BT /"
            + font.encode()
            + rb" [\d.]+ Tf [\d.]+ [\d.]+ Td \("
            + re.escape(name.encode("cp1252"))
            + rb"\) Tj ET",
            pdf,
        ), name
    on_screen = owner.locator(".public-link svg.qr")
    size = int(on_screen.get_attribute("viewBox").split()[2])
    d = on_screen.locator("path").get_attribute("d")
    screen = runs_to_modules(
        [(int(r), int(c), int(n)) for c, r, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", d)]
    )
    qr = re.search(rb"q ([\d.]+) 0 0 -([\d.]+) ([\d.]+) ([\d.]+) cm 0 g\n(.*?)\nf Q", pdf, re.S)
    assert qr and qr[1] == qr[2]
    module, left, top = (float(qr[i]) for i in (1, 3, 4))
    assert abs(module - 150 / size * MM_TO_PT) < 1e-5 and abs(left - 30 * MM_TO_PT) < 1e-3
    assert abs(top - (297 - 75) * MM_TO_PT) < 1e-3
    drawn = runs_to_modules(
        [(int(r), int(c), int(n)) for c, r, n in re.findall(rb"(\d+) (\d+) (\d+) 1 re", qr[5])]
    )
    assert drawn == screen and decode_qr(drawn, size) == join_url

    made = bytes(owner.evaluate(POSTER_PDF_JS))
    assert_one_a4_page_with_sound_xref(made)
    assert b"(C\x9cur d\x92\xc9loi \\(5 \x80\\)) Tj" in made and b"(F\xeate \x97 ?) Tj" in made
    title = "Cœur d\u2019E\u0301loi (5 €) - Fête — 漢".encode("utf-16-be").hex().upper()
    assert f"/Title <FEFF{title}>".encode() in made
    # A long name is set smaller to fit the page, the same in both clients.
    sizes = sizes_in(owner.evaluate(POSTER_SVG_JS, [LONG_ORG, LONG_TRIBE]))
    assert sizes == sizes_in(poster_svg(LONG_ORG, LONG_TRIBE, "https://bocage.example/j"))
    assert sizes[0] * BOLD_EM * len(LONG_ORG) <= TEXT_WIDTH_MM and sizes[0] < 14


def plan_counts_followers_apart(owner: Page, followers: int) -> None:
    """The admin's plan view shows the followers' count (GET /plan), apart: a follower is never
    billed (issue 16). Then back to the tribe."""
    owner.get_by_role("link", name="Administration").click()
    owner.get_by_role("link", name="Offre et factures").click()
    facts = owner.locator("dl.facts")
    expect(facts.locator("dt:text-is('Abonnés (non facturés)') + dd")).to_have_text(str(followers))
    owner.get_by_role("link", name="Messages").click()
    open_channel(owner, TRIBE)


def forged_follower_writes_are_not_applied(
    owner: Page, server: Server, follower: str, tribe: str, shown: list[dict[str, Any]]
) -> None:
    """A malicious server stores, under the follower's own genuine signature, a "delete for
    everyone" of the mayor's post and a post of its own (the API refuses both), straight into its
    database: the mayor's browser neither applies nor shows them, and flags the post (16.3). Nor
    does it count her reaction whose date the server moved after she signed it: a follower's
    envelope is verified like a member's before it is opened."""
    from bocage.client.messenger import Messenger
    from bocage.client.profile import Profile
    from chalicelib.adapters.clocks import SystemClock
    from chalicelib.adapters.records.messages import MessageRecords
    from chalicelib.adapters.sqlite_store import SqliteStore
    from chalicelib.domain.frames import StoredMessage

    lea = Messenger(Profile(follower))
    records = MessageRecords(SqliteStore(str((server.data or Path()) / "bocage.sqlite3"), SystemClock()))
    post = next(m for m in shown if m.get("text") == POST)
    heart = {"type": "reaction", "target": post["message_id"], "emoji": "❤️", "remove": False}
    forged = [
        ("delete", {"type": "delete", "target": post["message_id"]}, post["message_id"]),
        ("message", {"type": "text", "text": "Annulé !"}, None),
        ("reaction", heart, None),
    ]
    for seq, (kind, content, target) in enumerate(forged, start=max(m["seq"] for m in shown) + 1):
        envelope = lea.seal(tribe, f"forged-{kind}-0001", content, kind, target)
        if kind == "reaction":  # a reaction she may send, its signed date moved by the server
            envelope = envelope.model_copy(update={"sent_at": envelope.sent_at + 3_600_000})
        now = int(time.time())
        stamps = {"seq": seq, "sender_member": lea.trust.member_id, "stored_at": now}
        records.add(
            StoredMessage.model_validate({**envelope.model_dump(), **stamps, "expires_at": now + 86400})
        )
    owner.reload()
    expect(owner.locator(".messages .msg").filter(has_text="Message signalé")).to_have_count(1)  # the post
    expect(message(owner, POST)).to_be_visible()  # not deleted
    expect(owner.get_by_text("Annulé !")).to_have_count(0)
    expect(message(owner, POST).locator(".reactions .chip")).to_have_count(1)  # her 👍 only, no ❤️
    expect(message(owner, POST).locator(".reactions .chip")).to_have_attribute(
        "aria-label", re.compile(r"^👍 : 1, par Léa\.")
    )


def test_a_tribe_made_public_in_the_browser_reaches_its_followers(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    problems: list[str] = []
    owner = new_context("owner").pages[0]
    watch_console(owner, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    create_channel(owner, TRIBE, "tribe")
    tribe = owner.url.rsplit("/", 1)[1]

    members_panel(owner)
    expect(owner.locator(".public-followers")).to_have_count(0)  # not public yet
    owner.get_by_role("button", name="Publier un lien d'abonnement").click()
    expect(owner.locator(".public-link svg.qr path")).to_have_count(1)
    join_url = owner.locator("#join-url").input_value()
    assert f"channel={tribe}" in join_url and "&ticket=" in join_url and "&root=" in join_url
    expect(owner.get_by_role("link", name="Télécharger le QR code (SVG)")).to_have_attribute(
        "download", re.compile(r"\.svg$")
    )
    poster_matches_the_screen(owner)
    pdf_poster_matches_the_screen(owner, join_url)
    expect(owner.locator(".public-followers")).to_have_text("0 abonné")

    follower = str(tmp_path / "lea")
    assert cli("--profile", follower, "join", join_url, "--name", "Léa")["follower_id"].startswith("f_")
    owner.get_by_role("button", name="Membres").click()
    members_panel(owner)
    expect(owner.locator(".public-followers")).to_have_text("1 abonné")
    owner.get_by_role("button", name="Membres").click()
    plan_counts_followers_apart(owner, 1)

    send(owner, POST)  # the browser verifies Léa's certificate and seals its key to her device

    def read() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = cli("--profile", follower, "read", tribe)["messages"]
        return messages

    wait_for(
        lambda: any(m.get("text") == POST and m["verified"] for m in read()), "the follower to read the post"
    )

    # Léa's reaction, from her CLI: the mayor's browser verifies her against this tribe's ticket
    # and shows it under her certificate's name (docs/protocol.md, 16.3).
    post_id = next(m["message_id"] for m in read() if m.get("text") == POST)
    cli("--profile", follower, "react", tribe, post_id, "👍")
    expect(message(owner, POST).locator(".reactions .chip")).to_have_attribute(
        "aria-label", re.compile(r"^👍 : 1, par Léa\.")
    )

    # The managers' inbox: Léa's question, sealed by her CLI, opened in the mayor's browser; the
    # answer sealed to her device there, and published in the tribe (docs/protocol.md, 20).
    cli("--profile", follower, "question", tribe, "Où se garer samedi ?")
    owner.get_by_text("Questions des abonnés").click()
    expect(owner.locator(".question-text")).to_have_text("Léa : Où se garer samedi ?")
    owner.get_by_label("Réponse", exact=True).fill("Sur le parking de l'école.")
    owner.get_by_label("Publier aussi la réponse dans la tribu").check()
    owner.get_by_role("button", name="Envoyer la réponse").click()
    expect(owner.get_by_text("répondu")).to_be_visible()
    mine = cli("--profile", follower, "questions", tribe)["questions"]
    assert (
        mine[0]["answer"]["text"] == "Sur le parking de l'école."
        and mine[0]["answer"]["by_name"] == "Maire Dupuis"
    )
    published = mine[0]["published_message_id"]
    wait_for(
        lambda: any(m["message_id"] == published and m["verified"] for m in read()), "the published answer"
    )

    forged_follower_writes_are_not_applied(owner, web_server, follower, tribe, read())

    members_panel(owner)
    owner.get_by_role("button", name="Révoquer le lien").click()
    expect(owner.get_by_role("button", name="Publier un lien d'abonnement")).to_be_visible()
    expect(owner.locator("#join-url")).to_have_count(0)
    refused = bocage_fails("--profile", str(tmp_path / "late"), "join", join_url, "--name", "Tom")
    assert refused["status"] == 410
    assert not problems, problems


def vote_no_in_the_browser(page: Page) -> None:
    """The follower votes "Non"; her card shows totals only: her tally counts no other follower
    (their votes are sealed to members only), so a members/followers split would mislead."""
    page.get_by_label("Non").check()
    page.get_by_role("button", name="Voter").click()
    expect(page.get_by_role("button", name="Changer mon vote")).to_be_visible()
    card = message(page, "Un sapin sur la place ?")
    expect(card.locator(".poll-meta")).to_contain_text("1 votant · ouvert")
    expect(card.locator(".poll-option").nth(1)).to_contain_text("1 vote · 100 %")


def test_a_citizen_follows_a_public_tribe_in_the_browser_reads_votes_and_leaves(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """The follower's web view (docs/protocol.md, 16): from the poster's join URL, a name of
    their choice, keys made in the browser; then their town's tribe only: the mayor's post,
    read and checked on the device, a poll to vote in, no directory, no composer, no console;
    and "Quitter" deletes the follower on the server and everything in the browser."""
    problems: list[str] = []
    owner = str(tmp_path / "owner")
    cli("--profile", owner, "activate", web_server.owner_url(), "--name", "Maire Dupuis")
    created = cli("--profile", owner, "tribe", "create", TRIBE, "--public")
    tribe, join_url = created["channel_id"], created["join_url"]

    page = new_context("lea").pages[0]
    watch_console(page, problems)
    page.goto(join_url)
    expect(page.get_by_role("heading", name="Suivre la tribu publique de votre commune")).to_be_visible()
    page.get_by_label("Votre nom").fill("Léa du moulin")
    page.get_by_role("button", name="S'abonner").click()
    expect(page.get_by_role("heading", level=1, name=re.compile(TRIBE))).to_be_visible()
    assert "ticket=" not in page.url  # the ticket's seed left the address bar
    expect(page.get_by_text("vous êtes abonné")).to_be_visible()
    follower = cli("--profile", owner, "tribe", "link", tribe)
    assert follower["followers"] == 1

    cli("--profile", owner, "send", tribe, POST)
    poll = cli("--profile", owner, "poll", "create", tribe, "Un sapin sur la place ?", "Oui", "Non")
    expect(message(page, POST)).to_be_visible()  # sealed to her device by the mayor's CLI, opened here
    vote_no_in_the_browser(page)

    def results() -> dict[str, Any]:
        found: dict[str, Any] = cli("--profile", owner, "poll", "results", tribe, poll["poll_id"])
        return found

    wait_for(lambda: results()["counts"] == [0, 1], "the follower's vote to count")
    assert results()["follower_voters"] == 1

    # A follower's app: their tribes only; no composer, no members, no channel to create, no console.
    expect(page.get_by_label("Votre message")).to_have_count(0)
    expect(page.get_by_role("button", name="Membres")).to_have_count(0)
    expect(page.get_by_role("button", name="Nouveau canal")).to_have_count(0)
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    expect(page.locator(".channel-list a.channel-link")).to_have_count(1)

    # A question to the town hall, sealed in the browser, opened by the mayor's CLI; the answer,
    # sealed by the CLI to her device, opened in the browser (docs/protocol.md, 20).
    page.get_by_text("Poser une question à la mairie").click()
    page.get_by_label("Votre question").fill("Le sapin sera-t-il illuminé ?")
    page.get_by_role("button", name="Envoyer la question").click()
    expect(page.get_by_text("En attente de réponse.")).to_be_visible()
    inbox = cli("--profile", owner, "questions", tribe)["questions"]
    assert [(q["text"], q["asker_name"]) for q in inbox] == [
        ("Le sapin sera-t-il illuminé ?", "Léa du moulin")
    ]
    cli("--profile", owner, "answer", tribe, inbox[0]["question_id"], "Oui, dès le 1er décembre.")
    page.get_by_text("Poser une question à la mairie").click()  # closed, then opened again: fetched anew
    page.get_by_text("Poser une question à la mairie").click()
    expect(page.locator(".question-answer")).to_have_text(
        "Réponse de Maire Dupuis : Oui, dès le 1er décembre."
    )

    page.get_by_role("link", name="Quitter").click()
    page.get_by_role("button", name="Quitter").click()
    page.get_by_role("button", name="Oui, quitter").click()
    expect(page.get_by_role("heading", name="Bienvenue sur Bocage")).to_be_visible()
    assert cli("--profile", owner, "tribe", "link", tribe)["followers"] == 0
    page.reload()  # nothing of the follower is left in this browser: the welcome screen again
    expect(page.get_by_role("heading", name="Bienvenue sur Bocage")).to_be_visible()
    assert not problems, problems


def test_a_browser_author_shares_the_days_its_managers_chose_with_a_new_follower(
    web_server: Server, new_context: Callable[..., Any], cli: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """Section 23, the browser as the author: the mayor chooses 7 days in the members panel
    (signed in the browser), posts, and a citizen who joins afterwards reads that earlier post,
    because the browser seals its chain as it was at its first post of the window."""
    problems: list[str] = []
    owner = new_context("owner").pages[0]
    watch_console(owner, problems)
    activate(owner, web_server.owner_url(), "Maire Dupuis")
    create_channel(owner, TRIBE, "tribe")
    tribe = owner.url.rsplit("/", 1)[1]
    members_panel(owner)
    owner.get_by_role("button", name="Publier un lien d'abonnement").click()
    join_url = owner.locator("#join-url").input_value()
    choice = owner.get_by_label("Les nouveaux abonnés lisent")
    expect(choice).to_be_enabled()
    expect(choice).to_have_value("0")
    choice.select_option("7")
    expect(owner.get_by_text("Choix enregistré")).to_be_visible()
    owner.get_by_role("button", name="Membres").click()
    send(owner, "Déjà publié avant votre abonnement")

    follower = str(tmp_path / "lea")
    cli("--profile", follower, "join", join_url, "--name", "Léa")
    assert cli("--profile", follower, "tribe", "history", tribe)["days"] == 0  # a follower shares nothing
    send(owner, POST)  # the browser verifies Léa and seals her the window's state

    def texts() -> list[Any]:
        return [m.get("text") for m in cli("--profile", follower, "read", tribe)["messages"]]

    wait_for(lambda: POST in texts(), "the follower to read the new post")
    assert texts() == ["Déjà publié avant votre abonnement", POST]
    assert not problems, problems
