"""The test clock: a ManualClock that can also be set to a China local time."""

from __future__ import annotations

from datetime import datetime

from field_api.common.clock import CHINA_TZ, ManualClock

CHINA = CHINA_TZ


class ChinaClock(ManualClock):
    def set_china(
        self, year: int, month: int, day: int, hour: int = 10, minute: int = 0
    ) -> datetime:
        """Move to a China local time (either direction) and return it."""
        when = datetime(year, month, day, hour, minute, tzinfo=CHINA)
        self.set(when)
        return when

    def __call__(self) -> datetime:
        return self.now()
