"""The pure rules of partner organisations (docs/protocol.md, 22): codes and links as a person
pastes them, and the acceptance's binding to the invitation's ticket key."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from bocage.client import issuing
from chalicelib.domain.encoding import b64e
from chalicelib.domain.partners import (
    PartnerTarget,
    parse_partner,
    partner_code,
    verify_acceptance,
    verify_partner_ticket,
)
from chalicelib.domain.statements import StatementError, public_key_of

A, B, C = "o_" + "a" * 16, "o_" + "b" * 16, "o_" + "c" * 16
DEVICE = "d_" + "d" * 16
ROOT_A, ROOT_B = public_key_of(b"\x01" * 32), public_key_of(b"\x02" * 32)
NOW = 1_800_000_000


def _invitation() -> tuple[SigningKey, issuing.Ticket, PartnerTarget]:
    admin = SigningKey.generate()
    ticket = issuing.partner_ticket(admin, DEVICE, A, NOW, allow_tribes=False)
    code = partner_code("p_" + "e" * 16, A, ticket.fragment_seed, ROOT_A)
    return admin, ticket, parse_partner(code)


def test_a_code_and_a_link_carry_the_same_invitation() -> None:
    _, ticket, from_code = _invitation()
    url = (
        "https://app.example/#/partner?server=https%3A%2F%2Fapi.example&code=p_eeeeeeeeeeeeeeee"
        f"&org={A}&ticket={ticket.fragment_seed}&root={ROOT_A}"
    )
    from_link = parse_partner(f"  {url}\n")
    assert from_link.server == "https://api.example" and from_code.server is None
    assert (from_link.code, from_link.org, from_link.ticket_seed, from_link.root) == (
        from_code.code,
        from_code.org,
        from_code.ticket_seed,
        from_code.root,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not a partner invitation"),
        ("bocage-partner:v2:p_eeeeeeeeeeeeeeee:" + A, "four parts"),
        (f"https://x/#/partner?code=p_eeeeeeeeeeeeeeee&org={A}&root={ROOT_A}", "lacks ticket"),
        (f"bocage-partner:v2:p_eeeeeeeeeeeeeeee:{A}:{b64e(b'short')}:{ROOT_A}", "32 bytes"),
        (f"bocage-partner:v2:m_eeeeeeeeeeeeeeee:{A}:{ROOT_B}:{ROOT_A}", "names no organisation or code"),
        ("https://x/#/join?link=j_1", "not a partner invitation"),
    ],
)
def test_a_damaged_code_is_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_partner(text)


def test_the_acceptance_binds_the_accepters_root_to_whoever_held_the_code() -> None:
    admin, ticket, target = _invitation()
    checked_ticket = verify_partner_ticket(
        ticket.statement, org_id=A, issuer_sign_key=public_key_of(bytes(admin))
    )
    acceptance = issuing.partner_acceptance(target, B, ROOT_B, DEVICE, NOW + 60)
    assert verify_acceptance(acceptance, checked_ticket, B)["root"] == ROOT_B
    swapped = {**acceptance, "root": public_key_of(b"\x03" * 32)}  # a server's root instead of B's
    with pytest.raises(StatementError, match="signature"):
        verify_acceptance(swapped, checked_ticket, B)
    with pytest.raises(StatementError, match="other organisations"):
        verify_acceptance(acceptance, checked_ticket, C)  # replayed as a third organisation's
    late = issuing.partner_acceptance(target, B, ROOT_B, DEVICE, checked_ticket["expires_at"] + 1)
    with pytest.raises(StatementError, match="expired"):
        verify_acceptance(late, checked_ticket, B)


def test_a_partner_ticket_lasts_at_most_thirty_days_and_belongs_to_its_organisation() -> None:
    admin = SigningKey.generate()
    key = public_key_of(bytes(admin))
    ticket = issuing.partner_ticket(admin, DEVICE, A, NOW, allow_tribes=True).statement
    assert verify_partner_ticket(ticket, org_id=A, issuer_sign_key=key)["allow_tribes"] is True
    with pytest.raises(StatementError, match="this organisation"):
        verify_partner_ticket(ticket, org_id=B, issuer_sign_key=key)
    from chalicelib.domain.statements import sign_statement

    long_lived = sign_statement(
        {**{k: v for k, v in ticket.items() if k != "sig"}, "expires_at": NOW + 31 * 86400}, bytes(admin)
    )
    with pytest.raises(StatementError, match="30 days"):
        verify_partner_ticket(long_lived, org_id=A, issuer_sign_key=key)
