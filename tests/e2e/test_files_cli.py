"""Photos and documents over real sockets: `bocage serve` keeping blobs in its data directory,
the CLI sending a file and another member downloading it decrypted; what the server holds of it
is an opaque blob, gone with its message."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails


def test_send_a_document_then_download_it_and_delete_it(server: Server, tmp_path: Path) -> None:
    owner, alice = tmp_path / "owner", tmp_path / "alice"
    owner_id = bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")["member_id"]
    invitation = bocage("--profile", str(owner), "invite", "--name", "Alice")
    bocage("--profile", str(alice), "activate", invitation["activation_url"], "--name", "Alice")
    group = bocage("--profile", str(alice), "group", "create", "Chantier")["channel_id"]
    bocage("--profile", str(alice), "channel", "add", group, owner_id)

    document = tmp_path / "compte rendu.pdf"
    content = b"%PDF-1.7 " + secrets.token_bytes(300_000)
    document.write_bytes(content)
    sent = bocage("--profile", str(alice), "send", group, "--file", str(document), "Le compte rendu")
    attachment = sent["attachment"]
    assert (attachment["name"], attachment["mime"], attachment["size"]) == (
        "compte rendu.pdf",
        "application/pdf",
        len(content),
    )
    assert server.data is not None
    blobs = [p for p in (server.data / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].name == attachment["blob_id"]
    stored = blobs[0].read_bytes()
    assert len(stored) == attachment["stored_bytes"] and content[:1000] not in stored

    out = tmp_path / "downloads"
    got = bocage("--profile", str(owner), "download", group, sent["message_id"], "--out", str(out))
    assert Path(got["path"]).read_bytes() == content and Path(got["path"]).name == "compte rendu.pdf"
    again = bocage("--profile", str(owner), "download", group, sent["message_id"], "--out", str(out))
    assert Path(again["path"]).name == "compte rendu (1).pdf"  # never overwrites

    text_only = bocage("--profile", str(alice), "send", group, "sans pièce jointe")["message_id"]
    refused = bocage_fails("--profile", str(owner), "download", group, text_only)
    assert "carries no file" in refused["message"]
    assert "nothing to send" in bocage_fails("--profile", str(alice), "send", group)["message"]

    bocage("--profile", str(alice), "delete", group, sent["message_id"])
    assert not [p for p in (server.data / "blobs").rglob("*") if p.is_file()]
    gone = bocage_fails("--profile", str(owner), "download", group, sent["message_id"])
    assert gone["error"] in {"not_found", "cli_error"}
