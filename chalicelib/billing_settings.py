"""Billing, donation and impact settings, read from environment variables.

Kept apart from ``chalicelib.settings`` so billing can be wired without touching it.
Every figure is an integer: money in cents, rates in basis points (1 % = 100 bp, so a
5.5 % VAT is 550), masses of CO2e in micrograms (the environment gives milligrams,
decimals allowed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from chalicelib.footprint import model

_FOOTPRINT = model()

#: 2 EUR per billable user per month (before tax).
DEFAULT_PRICE_CENTS = 200
#: French standard VAT rate, 20 % (Code général des impôts, art. 278).
DEFAULT_VAT_BP = 2000
#: 10 % of the month's revenue before tax goes to the partners.
DEFAULT_DONATION_BP = 1000
DEFAULT_PARTNERS = "Planète Urgences:1,Ecotree:1"
#: Cost of one tree, 5 EUR. A round planning figure, not a partner's price list: set
#: BOCAGE_TREE_COST_CENTS to what the partners actually charge per tree planted.
DEFAULT_TREE_COST_CENTS = 500

#: The CO2e factors' defaults, in micrograms, come from the footprint model (chalicelib/footprint.py
#: and the sources in chalicelib/footprint.json), the same one bench/cost.py reads; each
#: BOCAGE_CO2E_MG_PER_* setting below overrides one. One e-mail: ~4 g (Berners-Lee, 2010).
DEFAULT_CO2E_UG_PER_EMAIL = _FOOTPRINT.email_ug()
#: One message delivered to one recipient: 0.24 mg, a deliberately high 8 KB over the network at
#: 0.06 kWh per GB (Aslan et al., 2018) and ~0.5 kg CO2e per kWh, so "avoided" stays conservative.
DEFAULT_CO2E_UG_PER_NOTIFICATION = _FOOTPRINT.notification_ug()
#: Keeping one GB of files a month: 0.808 g, 0.65 Wh per TB-hour of hard disk x 3 copies x PUE
#: 1.135 x 730 hours (Cloud Carbon Footprint's methodology), electricity only.
DEFAULT_CO2E_UG_PER_GB_MONTH = _FOOTPRINT.gb_month_ug()
#: One participant-minute of a video call: 2.62 g, 157 g an hour (Obringer et al., 2021) / 60.
DEFAULT_CO2E_UG_PER_CALL_MINUTE = _FOOTPRINT.call_minute_ug()

#: Admins are told this many days before their pilot ends.
NOTICE_DAYS = 30


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def _scaled(
    env: Mapping[str, str], name: str, default: int, scale: int, *, maximum: int | None = None
) -> int:
    """A non-negative decimal (``"5.5"``) times ``scale``, as an integer, rounded half up."""
    raw = (env.get(name) or "").strip().replace(",", ".")
    if not raw:
        return default
    try:
        number = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(f"{name} must be a number, not {raw!r}") from exc
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a non-negative number, not {raw!r}")
    value = int((number * scale).to_integral_value(rounding=ROUND_HALF_UP))
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} is over {maximum / scale:g}")
    return value


def parse_partners(text: str) -> tuple[tuple[str, int], ...]:
    """``"Name:weight,Other:weight"`` (weight 1 when omitted) into ((name, weight), ...)."""
    partners: list[tuple[str, int]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, weight = part.rpartition(":") if ":" in part else (part, "", "1")
        name = name.strip()
        try:
            share = int(weight.strip())
        except ValueError as exc:
            raise ValueError(f"BOCAGE_PARTNERS: weight of {name!r} must be an integer") from exc
        if not name or share <= 0:
            raise ValueError("BOCAGE_PARTNERS: each partner needs a name and a positive weight")
        if any(existing == name for existing, _ in partners):
            raise ValueError(f"BOCAGE_PARTNERS: {name!r} is listed twice")
        partners.append((name, share))
    if not partners:
        raise ValueError("BOCAGE_PARTNERS names no partner")
    return tuple(partners)


@dataclass(frozen=True)
class BillingSettings:
    price_cents: int = DEFAULT_PRICE_CENTS
    vat_bp: int = DEFAULT_VAT_BP
    donation_bp: int = DEFAULT_DONATION_BP
    partners: tuple[tuple[str, int], ...] = parse_partners(DEFAULT_PARTNERS)
    tree_cost_cents: int = DEFAULT_TREE_COST_CENTS
    trees_opening: int = 0
    co2e_ug_per_notification: int = DEFAULT_CO2E_UG_PER_NOTIFICATION
    co2e_ug_per_email: int = DEFAULT_CO2E_UG_PER_EMAIL
    co2e_ug_per_gb_month: int = DEFAULT_CO2E_UG_PER_GB_MONTH
    co2e_ug_per_call_minute: int = DEFAULT_CO2E_UG_PER_CALL_MINUTE
    notice_days: int = NOTICE_DAYS

    def __post_init__(self) -> None:
        if self.tree_cost_cents <= 0:
            raise ValueError("the cost of a tree must be positive")
        if not 0 <= self.donation_bp <= 10_000 or not 0 <= self.vat_bp <= 10_000:
            raise ValueError("rates are between 0 and 100 %")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BillingSettings:
        e = os.environ if env is None else env
        return cls(
            price_cents=_int(e, "BOCAGE_PRICE_CENTS", DEFAULT_PRICE_CENTS),
            vat_bp=_scaled(e, "BOCAGE_VAT_PERCENT", DEFAULT_VAT_BP, 100, maximum=10_000),
            donation_bp=_scaled(e, "BOCAGE_DONATION_PERCENT", DEFAULT_DONATION_BP, 100, maximum=10_000),
            partners=parse_partners(e.get("BOCAGE_PARTNERS") or DEFAULT_PARTNERS),
            tree_cost_cents=_int(e, "BOCAGE_TREE_COST_CENTS", DEFAULT_TREE_COST_CENTS, minimum=1),
            trees_opening=_int(e, "BOCAGE_TREES_OPENING", 0),
            co2e_ug_per_notification=_scaled(
                e, "BOCAGE_CO2E_MG_PER_NOTIFICATION", DEFAULT_CO2E_UG_PER_NOTIFICATION, 1000
            ),
            co2e_ug_per_email=_scaled(e, "BOCAGE_CO2E_MG_PER_EMAIL", DEFAULT_CO2E_UG_PER_EMAIL, 1000),
            co2e_ug_per_gb_month=_scaled(
                e, "BOCAGE_CO2E_MG_PER_GB_MONTH", DEFAULT_CO2E_UG_PER_GB_MONTH, 1000
            ),
            co2e_ug_per_call_minute=_scaled(
                e, "BOCAGE_CO2E_MG_PER_CALL_MINUTE", DEFAULT_CO2E_UG_PER_CALL_MINUTE, 1000
            ),
        )
