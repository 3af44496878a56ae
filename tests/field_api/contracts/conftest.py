"""Fixtures of the contract slice tests: a crew, its order at the scheme stage, the
customers' phones."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import Crew
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_order, make_user
from tests.field_api.visits.builders import make_scheme
from tests.sms_support import SmsInbox

# The customers' phones: messages are queued, and reading them runs the sms queue's jobs.
RecordingNotifier = SmsInbox


@dataclass
class CrewAtScheme:
    crew: Crew
    token: str
    actor: Principal
    order: WorkOrder


@pytest.fixture
def notifier(sms_inbox: SmsInbox) -> SmsInbox:
    return sms_inbox


@pytest.fixture
def at_scheme(session: Session, settings: Settings) -> CrewAtScheme:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew, name="李工")
    actor = auth_service.authenticate(session, token=token, settings=settings)
    order = make_order(session, crew=crew, stage=Stage.scheme_answered, customer_name="张三丰")
    make_scheme(session, order)
    return CrewAtScheme(crew=crew, token=token, actor=actor, order=order)
