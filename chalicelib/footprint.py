"""Energy and CO2e from one model: the sourced factors of ``chalicelib/footprint.json``.

Both the impact page (through ``BillingSettings``'s defaults) and ``bench/cost.py`` (its
footprint per user-month) compute from here, so their figures cannot disagree: the page uses
the file's declared inputs (a deliberately high 8 KB a notification), the bench the quantities
it measures (bytes pushed, Lambda GB-seconds, bytes stored). Electricity only, as the file says.

The model, by physical quantity:

- network: GB carried x ``network_kwh_per_gb``;
- compute: a Lambda GB-second is 1024/1769 vCPU-seconds at ``min + utilisation x (max - min)``
  watts, plus a GB-second of memory, times the PUE;
- storage: GB-months x coefficient (SSD for tables, HDD for objects, backups and logs) x replicas
  x PUE x 730 hours;
- CO2e: energy x the grid's intensity; a call minute and an e-mail are given in CO2e by their
  sources, so their energy is that CO2e at the same intensity.

The impact page's per-unit factors are rounded to three significant figures, the precision the
sources allow at best (0.808 g per GB-month, 0.24 mg per notification, 2.62 g per call minute).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FACTORS_FILE = Path(__file__).with_name("footprint.json")
GB = 10**9  # the sources' GB and TB are decimal
HOURS_PER_MONTH = 730
#: The physical quantities ``Footprint.wh`` prices; any other name is refused.
QUANTITIES = ("network_gb", "lambda_gb_seconds", "ssd_gb_month", "hdd_gb_month")


def significant(value: float, digits: int = 3) -> int:
    """An integer rounded to ``digits`` significant figures (half away from zero)."""
    if value == 0:
        return 0
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(value))))
    return int(math.floor(abs(value) * scale + 0.5) / scale) * (1 if value > 0 else -1)


@dataclass(frozen=True)
class Footprint:
    """The factors by name (their ``value``), with what the file says of each."""

    factors: Mapping[str, Mapping[str, Any]]

    @classmethod
    def load(cls, path: Path = FACTORS_FILE) -> Footprint:
        table = json.loads(path.read_text(encoding="utf-8"))
        factors = table["factors"]
        for name, factor in factors.items():
            if not isinstance(factor.get("value"), int | float) or factor["value"] < 0:
                raise ValueError(f"{path}: factor {name} needs a non-negative number as its value")
        return cls(factors)

    def value(self, name: str) -> float:
        return float(self.factors[name]["value"])

    # -- energy ----------------------------------------------------------------------------------

    def wh_per_lambda_gb_second(self) -> float:
        v = self.value
        low, high = v("vcpu_watts_min"), v("vcpu_watts_max")
        watts_per_vcpu = low + v("cpu_utilisation") * (high - low)
        vcpus_per_gb = 1024 / v("lambda_mb_per_vcpu")
        watts = vcpus_per_gb * watts_per_vcpu + v("memory_wh_per_gb_hour")  # Wh per hour is W
        return watts * v("pue") / 3600

    def wh_per_gb_month(self, medium: str) -> float:
        """Storage energy per GB-month, ``medium`` "ssd" or "hdd"."""
        v = self.value
        per_tb_hour = v(f"{medium}_wh_per_tb_hour")
        return per_tb_hour / 1000 * v("storage_replicas") * v("pue") * HOURS_PER_MONTH

    def wh(self, quantities: Mapping[str, float]) -> float:
        """Energy, in Wh, of physical quantities named as in ``QUANTITIES``."""
        unknown = set(quantities) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"no energy model for {', '.join(sorted(unknown))}")
        rates = {
            "network_gb": self.value("network_kwh_per_gb") * 1000,
            "lambda_gb_seconds": self.wh_per_lambda_gb_second(),
            "ssd_gb_month": self.wh_per_gb_month("ssd"),
            "hdd_gb_month": self.wh_per_gb_month("hdd"),
        }
        return sum(rates[name] * amount for name, amount in quantities.items())

    # -- CO2e ------------------------------------------------------------------------------------

    def grams(self, wh: float) -> float:
        """CO2e, in grams, of ``wh`` watt-hours of electricity."""
        return wh / 1000 * self.value("grid_g_per_kwh")

    def wh_of_grams(self, grams: float) -> float:
        return grams / self.value("grid_g_per_kwh") * 1000

    # -- the impact page's per-unit figures, in micrograms of CO2e -----------------------------

    def notification_ug(self) -> int:
        """One message delivered to one recipient: its declared bytes over the network."""
        wh = self.wh({"network_gb": self.value("notification_wire_bytes") / GB})
        return significant(self.grams(wh) * 1e6)

    def email_ug(self) -> int:
        return significant(self.value("email_g") * 1e6)

    def gb_month_ug(self) -> int:
        """Keeping one GB of files (object storage, hard disks) for a month."""
        return significant(self.grams(self.wh({"hdd_gb_month": 1})) * 1e6)

    def call_minute_ug(self) -> int:
        return significant(self.value("call_g_per_hour") / 60 * 1e6)

    def source(self, name: str) -> str:
        """One factor's source and method, as the impact page's assumptions quote them."""
        factor = self.factors[name]
        return f"{factor['source']}; {factor['method']} (taken {factor['taken']}, {factor['status']})"


@cache
def model() -> Footprint:
    """The shipped factors, read once per process."""
    return Footprint.load()
