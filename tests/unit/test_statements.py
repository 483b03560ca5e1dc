"""Signed statements: the worked examples of docs/protocol.md (appendix, "Trust") reproduce byte
for byte, and every malformed statement is refused."""

from __future__ import annotations

import pytest

from chalicelib.domain.encoding import b64e
from chalicelib.domain.statements import (
    MEMBERSHIP,
    TICKET,
    StatementError,
    check_shape,
    fingerprint,
    public_key_of,
    sign_statement,
    signing_bytes,
    statement_hash,
    verify_statement,
)
from tests.trust_vectors import VECTORS, build_vectors


def test_the_worked_examples_reproduce() -> None:
    built = build_vectors()
    for name, (sig, digest) in VECTORS.items():
        assert built[name]["sig"] == sig, name
        assert statement_hash(built[name]) == digest, name


def test_root_fingerprint_and_ascii_signing_bytes() -> None:
    built = build_vectors()
    assert fingerprint(public_key_of(bytes([0x11]) * 32)) == "ELpoLIrRNROXHotWiBqri9cCu4B3luyoGTLHNalNbm0"
    assert b"\\u00c9lise Martin" in signing_bytes(built["ticket"])
    assert b"sig" not in signing_bytes(built["ticket"])


def test_verify_needs_the_right_key_and_purpose() -> None:
    built = build_vectors()
    ticket_key = public_key_of(bytes([0x22]) * 32)
    verify_statement(built["mc_inv"], "bocage/member-cert/v2", ticket_key)
    with pytest.raises(StatementError, match="signature"):
        verify_statement(built["mc_inv"], "bocage/member-cert/v2", public_key_of(bytes([0x33]) * 32))
    with pytest.raises(StatementError, match="expected"):
        verify_statement(built["mc_inv"], TICKET, ticket_key)
    tampered = {**built["mc_inv"], "display_name": "Mallory"}
    with pytest.raises(StatementError, match="signature"):
        verify_statement(tampered, "bocage/member-cert/v2", ticket_key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown fields"),
        ({"seq": True}, "invalid seq"),
        ({"seq": -1}, "invalid seq"),
        ({"prev": "short"}, "invalid prev"),
        ({"op": "steal"}, "invalid op"),
        ({"org_id": "x"}, "invalid org_id"),
        ({"purpose": "bocage/membership/v1"}, "update it"),
    ],
)
def test_malformed_statements_are_refused(change: dict[str, object], message: str) -> None:
    entry = {**build_vectors()["op1"], **change}
    with pytest.raises(StatementError, match=message):
        check_shape(entry, MEMBERSHIP)


def test_missing_fields_are_refused() -> None:
    entry = dict(build_vectors()["op1"])
    del entry["kind"]
    with pytest.raises(StatementError, match="missing fields \\['kind'\\]"):
        check_shape(entry, MEMBERSHIP)


def test_sign_statement_checks_what_it_signs() -> None:
    with pytest.raises(StatementError):
        sign_statement({"purpose": MEMBERSHIP, "seq": 0}, bytes(32))
    assert len(b64e(bytes(64))) == 86
