"""What every core operation needs: the engine, the settings and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from clinic.models import utc_now
from clinic.settings import Settings
from clinic.slots import SlotRules


@dataclass(frozen=True)
class Clinic:
    """Passed to every core function; built once per process by its composition root
    (tests build one with a frozen clock)."""

    engine: Engine
    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)

    def now(self) -> datetime:
        return self.clock()

    def today(self, zone: ZoneInfo | None = None) -> date:
        """Today's date where the clinic is (or in `zone`)."""
        return self.now().astimezone(zone or self.settings.zone).date()

    def last_bookable_day(self, zone: ZoneInfo | None = None) -> date:
        return self.rules.last_bookable_day(self.now(), zone or self.settings.zone)

    @property
    def rules(self) -> SlotRules:
        return SlotRules(
            min_notice=self.settings.min_notice, horizon_days=self.settings.horizon_days
        )
