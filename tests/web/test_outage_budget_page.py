"""The planned-outage budget page in a real browser: ECharts draws a district's burn-down (its
budget against the cumulative customer-hours of approved planned outages, hand-checked), the
merge proposal with the customer-hours it saves and the live-line share, at a desktop size and
on a phone; the tables beside; the CSV downloads; the links from the reliability page and the
planner dashboard; English on request.

The data is seeded next year (customers connected on its January 1st), so this year's indices
on the reliability page, which shares the server, do not change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from field_api.auth.models import User
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.clock import ManualClock
from field_api.reliability import merging, planning, register
from field_api.reliability.planning_schemas import (
    BudgetSet,
    LiveLineCreate,
    PlannedOutageApprove,
    PlannedOutageCreate,
)
from tests.web.conftest import _context, _csp_violation
from tests.web.support import LiveServer, audit, shot, signed_in
from tests.web.test_planner import CHART, DESKTOP, PHONE_390

SECTIONS = (
    "switch_code,feeder,district,transformer_code\n"
    "SW-BUD-1,F-BUD,T-BUD,TX-DEMO-01\n"
    "SW-BUD-2,F-BUD,T-BUD,TX-DEMO-02\n"
)


def _customers(year: int) -> str:
    """TX-DEMO-01 (SW-BUD-1): two accounts; TX-DEMO-02 (SW-BUD-2): one."""
    return (
        "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
        "connected_on\n"
        f"BUD-1,孙一,13900000011,SP-BUD-1,lv,TX-DEMO-01,SW-BUD-1,urban,{year}-01-01\n"
        f"BUD-2,孙二,13900000012,SP-BUD-2,lv,TX-DEMO-01,SW-BUD-1,urban,{year}-01-01\n"
        f"BUD-3,孙三,13900000013,SP-BUD-3,lv,TX-DEMO-02,SW-BUD-2,rural,{year}-01-01\n"
    )


def _principal(user: User) -> Principal:
    return Principal(user_id=user.id, name=user.name, role=user.role)


def _window(year: int, month: int, day: int, start_h: int, end_h: int) -> tuple[datetime,
                                                                               datetime]:
    return (datetime(year, month, day, start_h, tzinfo=clock.CHINA_TZ),
            datetime(year, month, day, end_h, tzinfo=clock.CHINA_TZ))


@pytest.fixture(scope="module")
def year(live_server: LiveServer) -> int:
    """Next year: budget 100; approved 2 x 4 h in March (8) and 1 x 6 h in May (6); two
    waiting requests on SW-BUD-1 in June, 2 x 2 h and 2 x 3 h (10 apart, 6 merged, 4 saved);
    live-line work on SW-BUD-2 in February instead of a 5 h outage (5 avoided)."""
    year = clock.china_today().year + 1
    seeded_at = ManualClock(datetime(year, 7, 1, 9, tzinfo=clock.CHINA_TZ))
    with clock.use_clock(seeded_at), live_server.session_factory.begin() as session:
        users = {u.role: u for u in session.execute(select(User)).scalars()}
        admin, planner = _principal(users[Role.admin]), _principal(users[Role.planner])
        dispatcher = _principal(users[Role.dispatcher])
        settings = live_server.settings
        register.import_sections(session, SECTIONS.encode(), filename="s.csv", actor=admin)
        register.import_customers(session, _customers(year).encode(), filename="c.csv",
                                  actor=admin)
        planning.set_budget(session, settings, planner, "T-BUD", year,
                            BudgetSet(customer_hours=100, reason="页面测试"))
        for switch, when in (("SW-BUD-1", _window(year, 3, 10, 8, 12)),
                             ("SW-BUD-2", _window(year, 5, 5, 8, 14))):
            made = planning.request_outage(session, settings, PlannedOutageCreate(
                work="计划检修", switch_code=switch, start_at=when[0], end_at=when[1]),
                dispatcher)
            planning.approve(session, settings, made.id, PlannedOutageApprove(), planner)
        for when in (_window(year, 6, 1, 8, 10), _window(year, 6, 8, 8, 11)):
            planning.request_outage(session, settings, PlannedOutageCreate(
                work="线路消缺", switch_code="SW-BUD-1", start_at=when[0], end_at=when[1]),
                dispatcher)
        merging.record_live_line(session, LiveLineCreate(
            work="带电更换避雷器", switch_code="SW-BUD-2", done_on=date(year, 2, 10),
            outage_hours=5), dispatcher)
    return year


@pytest.fixture(params=[DESKTOP, PHONE_390], ids=["1366x768", "390px"])
def page(request: Any, browser: Any, live_server: LiveServer) -> Iterator[Any]:
    size = request.param
    mobile = size["width"] < 600
    context = _context(browser, live_server, viewport=size, is_mobile=mobile, has_touch=mobile)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: _csp_violation(msg, errors))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def _series(drawn: dict[str, Any], name: str) -> dict[str, Any]:
    data = next(s["data"] for s in drawn["series"] if s["name"] == name)
    return dict(zip(drawn["categories"], data, strict=True))


def test_the_page_draws_the_burn_down_merges_and_live_line_share(
    page: Any, live_server: LiveServer, year: int
) -> None:
    signed_in(page, live_server.tokens["planner"], f"/app/outage-budget?year={year}")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    burn = page.evaluate(CHART, '#panel-burn .chart[data-chart="burn-down"]')
    used = _series(burn, "T-BUD · 累计已用")
    cumulative = [0, 0, 8, 8, 14, 14, 14, 14, 14, 14, 14, 14]
    assert list(used.values()) == cumulative
    assert list(used)[0] == f"{year}-01" and len(used) == 12
    assert set(_series(burn, "T-BUD · 年度预算").values()) == {100}
    table = page.locator("#panel-burn details.data-table")
    expect(table.locator("tr", has_text=f"{year}-05").filter(has_text="T-BUD")).to_contain_text(
        "86.00")  # left after May: 100 - 14
    proposals = page.evaluate(CHART, '#panel-proposals .chart[data-chart="proposals"]')
    [name] = proposals["categories"]
    assert name.startswith("SW-BUD-1 #")
    assert _series(proposals, "节约时户数")[name] == 4
    assert _series(proposals, "分别停电时户数")[name] == 10
    assert _series(proposals, "合并后时户数")[name] == 6
    live = page.evaluate(CHART, '#panel-live .chart[data-chart="live-line"]')
    assert _series(live, "带电作业减少")["T-BUD"] == 5
    assert _series(live, "累计已用")["T-BUD"] == 14
    expect(page.locator("#panel-live tr", has_text="T-BUD")).to_contain_text("26.3%")  # 5/19
    width = page.viewport_size["width"]
    audit(page)  # every control named, nothing wider than the screen
    shot(page, f"outage-budget-{width}")
    with page.expect_download() as download:
        page.click("#panel-burn-csv")
    text = download.value.path().read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("供电所,月份,预算时户数")
    assert f"T-BUD,{year}-05" in text
    with page.expect_download() as download:
        page.click("#panel-proposals-csv")
    assert "SW-BUD-1" in download.value.path().read_text(encoding="utf-8-sig")


def test_the_page_is_linked_and_speaks_english(
    page: Any, live_server: LiveServer, year: int
) -> None:
    signed_in(page, live_server.tokens["planner"], "/app/planner")
    expect(page.locator("#to-budget")).to_have_text("计划停电时户数预算 →")
    page.goto(f"{live_server.url}/app/reliability")
    page.click("#to-budget")
    expect(page).to_have_url(re.compile(r"/app/outage-budget$"))
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    page.goto(f"{live_server.url}/app/outage-budget?lang=en&year={year}")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#panel-burn-title")).to_have_text(
        "Budget burn-down by district (cumulative customer-hours)")
    burn = page.evaluate(CHART, '#panel-burn .chart[data-chart="burn-down"]')
    assert "T-BUD · Used (cumulative)" in [s["name"] for s in burn["series"]]
    expect(page.locator("#to-reliability")).to_have_text("← Back to supply reliability")
