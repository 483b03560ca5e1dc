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

#: CO2e of one e-mail: ~4 g. Mike Berners-Lee, "How Bad Are Bananas? The Carbon Footprint of
#: Everything" (Profile Books, 2010), for a typical e-mail (0.3 g for spam, 50 g with a large
#: attachment). The 2020 edition revises a short e-mail down (~0.3 g laptop to laptop, ~17 g for
#: a long one), so 4 g is a mid-range, older figure: configurable for that reason.
DEFAULT_CO2E_UG_PER_EMAIL = 4_000_000
#: CO2e of one push notification (one message delivered to one recipient): 0.00024 g = 0.24 mg.
#: An ESTIMATE, not a measurement: a few kilobytes on the wire (a padded ciphertext frame with
#: WebSocket, TLS and TCP/IP overhead, and its share of keep-alives), at ~0.06 kWh per GB
#: (Aslan, Mayers, Koomey & France, "Electricity Intensity of Internet Data Transmission",
#: Journal of Industrial Ecology, 2018, figure for 2015) and ~0.5 kg CO2e per kWh (world-average
#: electricity; France's grid is about ten times lower) gives 0.03 mg per KB, so 0.24 mg is
#: about 8 KB: deliberately high, which keeps the "avoided" figure conservative. It leaves out
#: the phone's screen time and manufacture, as a per-unit network estimate does.
DEFAULT_CO2E_UG_PER_NOTIFICATION = 240
#: CO2e of keeping one GB (10^9 bytes) of encrypted files for a month: 0.81 g. An ESTIMATE of the
#: electricity only, with Cloud Carbon Footprint's methodology (cloudcarbonfootprint.org, "Methodology",
#: storage): 0.65 Wh per TB-hour for hard-disk object storage (its coefficient, after Etsy's "Cloud
#: Jewels", 2020), times 3 for the copies S3 keeps (its replication factor for S3) and AWS's
#: PUE of 1.135, over 730 hours: 1.62 Wh per GB-month, at the same ~0.5 kg CO2e per kWh as above.
#: The drives' manufacture is left out (it would add about a half on hard disks).
DEFAULT_CO2E_UG_PER_GB_MONTH = 808_000
#: CO2e of one participant-minute of a video call: ~2.6 g. Obringer, Rachunok, Maia-Silva,
#: Arbabzadeh, Nateghi & Madani, "The overlooked environmental footprint of increasing Internet
#: use", Resources, Conservation & Recycling 167 (April 2021) 105389,
#: https://doi.org/10.1016/j.resconrec.2020.105389 (read 2026-12-03): one hour of
#: videoconferencing emits 150 to 1,000 g CO2e per user depending on the service and the video
#: quality (data centres and networks, per GB transferred), about 157 g for an hour with the
#: camera on; 157 g / 60 = 2.6 g. The low end fits Bocage, whose video is capped at 1.5 Mbit/s
#: per stream (docs/calls.md). A footprint, not a saving: it is shown as emitted.
DEFAULT_CO2E_UG_PER_CALL_MINUTE = 2_600_000

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
