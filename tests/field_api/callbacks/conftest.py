"""A settable server clock for the call-back tests (time is the external seam)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta, timezone

import pytest

from field_api.callbacks import hooks as callback_hooks
from field_api.deadlines import hooks as deadline_hooks
from tests.clocks import ChinaClock

CHINA = timezone(timedelta(hours=8))


@pytest.fixture
def clock(server_clock: ChinaClock) -> Iterator[ChinaClock]:
    server_clock.set_china(2025, 9, 29, 10, 0)
    deadline_hooks.install()
    callback_hooks.install()
    yield server_clock
