"""Fixtures of the media tests."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from field_api.config import Settings

from .support import Crews


@pytest.fixture
def crews(session: Session, settings: Settings) -> Crews:
    return Crews(session, settings)
