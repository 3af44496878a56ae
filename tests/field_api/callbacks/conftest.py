"""A settable server clock for the call-back tests (time is the external seam)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from field_api.callbacks import hooks as callback_hooks
from field_api.deadlines import hooks as deadline_hooks

CHINA = timezone(timedelta(hours=8))


class FakeClock:
    """Server time the services read through ``utcnow``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
        self.now = datetime(year, month, day, hour, minute, tzinfo=CHINA)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(datetime(2025, 9, 29, 10, 0, tzinfo=CHINA))
    for module in (
        "field_api.work_orders.service",
        "field_api.deadlines.service",
        "field_api.tracking.service",
        "field_api.callbacks.service",
    ):
        monkeypatch.setattr(f"{module}.utcnow", fake)
    deadline_hooks.install()
    callback_hooks.install()
    return fake
