"""Helpers of the browser tests: the live server's handle, screenshots, sign-in, test orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api.config import Settings
from field_api.deadlines import service as deadlines
from field_api.work_orders import service as orders
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import FLOW, Area, Category, Channel, Stage
from field_api.work_orders.schemas import WorkOrderCreate
from tests.sms_support import SmsInbox

T = TypeVar("T")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "web"
PHONE = {"width": 360, "height": 740}


@dataclass
class LiveServer:
    url: str
    settings: Settings
    session_factory: sessionmaker[Session]
    sms: SmsInbox  # the customers' phones: reading it sends the queued messages
    tokens: dict[str, str]

    def new_order(
        self,
        *,
        stage: Stage = Stage.accepted,
        crew: str = "CREW-A",
        district: str = "SZ-NS",
        name: str = "测试客户",
        accepted_at: datetime | None = None,
        step: timedelta = timedelta(hours=1),
    ) -> int:
        """A fresh residential order of ``crew`` moved along the flow to ``stage``.

        With ``accepted_at`` the order and each later stage change are dated back (one
        ``step`` apart) and its deadlines recomputed, as if the work had happened then.
        """
        with self.session_factory.begin() as session:
            order = orders.create(
                session,
                WorkOrderCreate(
                    customer_name=name,
                    customer_phone="13900139000",
                    customer_id_number="440301199001011234",
                    category=Category.residential,
                    capacity_kw=8,
                    phases=1,
                    address="深圳市南山区测试路1号",
                    lon=113.9305,
                    lat=22.5333,
                    district_code=district,
                    crew_code=crew,
                    area=Area.urban,
                    channel=Channel.app,
                    applied_on=date.today() - timedelta(days=1),
                ),
                actor=None,
            )
            rows = [
                orders.transition(session, order, target, actor=None)
                for target in FLOW[1 : FLOW.index(stage) + 1]
            ]
            if accepted_at is not None:
                order.accepted_at = accepted_at
                for i, row in enumerate(rows, start=1):
                    row.at = accepted_at + i * step
                order.stage_changed_at = accepted_at + len(rows) * step
                session.flush()
                deadlines.refresh(session, order)
            return order.id

    def transitions(self, order_id: int) -> list[StageTransition]:
        with self.session_factory() as session:
            rows = session.execute(
                select(StageTransition)
                .where(StageTransition.order_id == order_id)
                .order_by(StageTransition.id)
            ).scalars()
            return list(rows)

    def rows_of(self, model: type[T], order_id: int) -> list[T]:
        """Every row of ``model`` (a table with ``order_id``) for the order, oldest first."""
        with self.session_factory() as session:
            column = model.order_id  # type: ignore[attr-defined]
            ident = model.id  # type: ignore[attr-defined]
            return list(
                session.execute(select(model).where(column == order_id).order_by(ident)).scalars()
            )

    def stage(self, order_id: int) -> Stage:
        with self.session_factory() as session:
            return session.get_one(WorkOrder, order_id).stage


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, token: str, path: str = "/app/") -> None:
    """Sign in through the form (labels in zh-CN, the default language)."""
    page.goto(path)
    page.get_by_label("访问令牌").fill(token)
    page.get_by_role("button", name="登录").click()


def signed_in(page: Any, token: str, path: str = "/app/") -> None:
    """Sign in and wait until the app shows the signed-in view."""
    sign_in(page, token, path)
    page.locator("#sign-out").wait_for(state="visible")


# Controls without an accessible name, and whether the page scrolls sideways at its width.
AUDIT = """() => {
  const named = el => {
    if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return true;
    if (el.labels && el.labels.length) return true;
    return el.tagName === 'BUTTON' || el.tagName === 'A' ? el.textContent.trim() !== '' : false;
  };
  const controls = [...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter(el => el.type !== 'hidden' && !el.closest('[hidden]'));
  return {
    unnamed: controls.filter(el => !named(el)).map(el => el.outerHTML.slice(0, 80)),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
}"""


def audit(page: Any) -> None:
    """Every control has a label (or text), and nothing is wider than the phone."""
    found = page.evaluate(AUDIT)
    assert found["unnamed"] == []
    assert found["overflow"] <= 0
