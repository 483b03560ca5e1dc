"""Safety numbers: the protocol's worked example, symmetry, and what a confirmation accepts."""

from __future__ import annotations

from bocage.client.verification import grouped, normalise, qr_payload, safety_digits
from chalicelib.domain.statements import public_key_of
from tests.trust_vectors import INVITEE_IK, ORG, OWNER, OWNER_IK, SAFETY_NUMBER


def test_the_worked_example_and_symmetry() -> None:
    owner, invitee = public_key_of(OWNER_IK), public_key_of(INVITEE_IK)
    assert grouped(safety_digits(owner, invitee)) == SAFETY_NUMBER
    assert safety_digits(invitee, owner) == safety_digits(owner, invitee)
    assert safety_digits(owner, public_key_of(bytes(32))) != safety_digits(owner, invitee)


def test_typed_and_scanned_numbers_normalise_to_the_digits() -> None:
    digits = SAFETY_NUMBER.replace(" ", "")
    assert normalise(SAFETY_NUMBER) == digits
    assert normalise(qr_payload(ORG, OWNER, digits)) == digits
    assert qr_payload(ORG, OWNER, digits) == f"bocage-verify:v2:{ORG}:{OWNER}:{digits}"
