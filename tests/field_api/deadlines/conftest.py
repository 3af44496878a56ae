"""A settable server clock for the deadline tests (the only fake: time is an external seam)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from field_api.deadlines import hooks

CHINA = timezone(timedelta(hours=8))


class FakeClock:
    """Server time the services read through ``utcnow``; tests set it to fixed moments."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
        """Move to a China local time and return it."""
        self.now = datetime(year, month, day, hour, minute, tzinfo=CHINA)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock(datetime(2025, 9, 29, 10, 0, tzinfo=CHINA))
    for module in (
        "field_api.work_orders.service",
        "field_api.deadlines.service",
    ):
        monkeypatch.setattr(f"{module}.utcnow", fake)
    hooks.install()
    yield fake
