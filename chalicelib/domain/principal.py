"""Who is calling: the result of authentication, carried into every service call."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.organisation import Role


@dataclass(frozen=True)
class Principal:
    org_id: str
    member_id: str
    device_id: str
    role: Role
    # The member's name as authentication read it: what the audit log records them under.
    display_name: str = ""


@dataclass(frozen=True)
class Operator:
    """The service operator: may create organisations, sees no organisation's content."""

    key_id: str
