"""The reliability page in a real browser: ECharts draws the service's SAIDI per month for urban
and rural customers against the targets, and each district's area year to date with its
projection (hand-checked for a seeded district), at a desktop size and on a phone; the CSV
downloads; the page names the projection's method."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from field_api.auth.models import User
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.reliability import outages, register
from field_api.reliability.rules import Cause, OutageKind
from field_api.reliability.schemas import OutageClose, OutageCreate, RestorationCreate
from tests.web.conftest import _context, _csp_violation
from tests.web.support import LiveServer, audit, shot, signed_in
from tests.web.test_planner import CHART, DESKTOP, PHONE_390

SECTIONS = "switch_code,feeder,district,transformer_code\nSW-REL-1,F-REL,T-REL,TX-FT-01\n" \
    "SW-REL-2,F-REL,T-REL,TX-FT-02\n"
# TX-FT-01: two urban customers on two supply points; TX-FT-02: one rural customer
CUSTOMERS = (
    "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
    "connected_on\n"
    "REL-1,周一,13900000001,SP-REL-1,lv,TX-FT-01,SW-REL-1,urban,2020-01-01\n"
    "REL-2,吴二,13900000002,SP-REL-2,lv,TX-FT-01,SW-REL-1,urban,2020-01-01\n"
    "REL-3,郑三,13900000003,SP-REL-3,mv,TX-FT-02,SW-REL-2,rural,2020-01-01\n"
)


def _principal(user: User) -> Principal:
    return Principal(user_id=user.id, name=user.name, role=user.role)


@pytest.fixture(scope="module")
def start(live_server: LiveServer) -> datetime:
    """The register above and one fault on F-REL: TX-FT-01 back after 30 min, TX-FT-02 after
    60 min; returns the outage's start."""
    began = clock.now() - timedelta(hours=2)
    with live_server.session_factory.begin() as session:
        users = {u.role: u for u in session.execute(select(User)).scalars()}
        admin, dispatcher = _principal(users[Role.admin]), _principal(users[Role.dispatcher])
        register.import_sections(session, SECTIONS.encode(), filename="s.csv", actor=admin)
        register.import_customers(session, CUSTOMERS.encode(), filename="c.csv", actor=admin)
        body = OutageCreate(
            kind=OutageKind.fault, cause=Cause.fault, feeder="F-REL", start_at=began
        )
        outage = outages.record_outage(session, body, dispatcher)
        outages.restore(session, outage.id, RestorationCreate(
            transformer_codes=["TX-FT-01"], at=began + timedelta(minutes=30)), dispatcher)
        outages.close(session, outage.id, OutageClose(end_at=began + timedelta(minutes=60)),
                      dispatcher)
    return began


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


def test_the_page_draws_the_services_indices_against_the_targets(
    page: Any, live_server: LiveServer, start: datetime
) -> None:
    signed_in(page, live_server.tokens["planner"], "/app/reliability")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    year = clock.to_china(start).year
    month = clock.to_china(start).strftime("%Y-%m")
    report = httpx.get(
        f"{live_server.url}/reliability/indices", params={"year": year},
        headers={"Authorization": f"Bearer {live_server.tokens['planner']}"},
    ).json()
    areas = {s["area"]: s for s in report["scopes"] if s["scope"] == "area"}
    months = page.evaluate(CHART, '#panel-months .chart[data-chart="saidi"]')
    urban, rural = _series(months, "城市"), _series(months, "农村")
    assert urban == {m["period"]: m["ytd_saidi_h"] for m in areas["urban"]["months"]}
    assert rural == {m["period"]: m["ytd_saidi_h"] for m in areas["rural"]["months"]}
    # DL/T 836.1 counts supply points: urban 2 points x 0.5 h / 2 = 0.5 h; rural 1 x 1 h / 1
    # (the same every month: the register did not change), from the outage's month on
    assert urban[month] == pytest.approx(0.5) and rural[month] == pytest.approx(1.0)
    assert all(v == 0 for m, v in urban.items() if m < month)
    assert set(_series(months, "目标 · 城市").values()) == {2.38}
    assert set(_series(months, "目标 · 农村").values()) == {8.52}
    districts = page.evaluate(CHART, '#panel-districts .chart[data-chart="districts"]')
    ytd = _series(districts, "年累计")
    assert ytd["T-REL 城市"] == pytest.approx(0.5) and ytd["T-REL 农村"] == pytest.approx(1.0)
    assert _series(districts, "目标")["T-REL 农村"] == 8.52
    district = next(s for s in report["scopes"] if s["district"] == "T-REL" and
                    s["area"] == "urban")
    assert _series(districts, "年末预测")["T-REL 城市"] == pytest.approx(
        district["projection"]["saidi_h"])
    # the projection's method is named beside the figure (no last year's snapshots: pro rata)
    table = page.locator("#panel-districts details.data-table")
    expect(table.locator("tr", has_text="T-REL 城市")).to_contain_text("按已过时间比例外推")
    width = page.viewport_size["width"]
    audit(page)  # every control named, nothing wider than the screen
    shot(page, f"reliability-{width}")
    with page.expect_download() as download:
        page.click("#panel-districts-csv")
    text = download.value.path().read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("统计范围,供电所,城乡,统计期")
    assert "T-REL" in text and "pro_rata" in text
    # IEEE 1366: the major-event-day method is named (no history, no planner threshold)
    page.select_option("#indices-definition", "ieee1366")
    page.click("#indices-form button[type=submit]")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#med")).to_contain_text("无阈值")



def test_the_planner_dashboard_links_to_the_page_and_back(
    page: Any, live_server: LiveServer
) -> None:
    """The dashboard links to the reliability page and the page back, in zh-CN and in en, and
    the planner stays signed in across both."""
    signed_in(page, live_server.tokens["planner"], "/app/planner")
    expect(page.locator("#to-reliability")).to_have_text("供电可靠性指标 →")
    page.click("#to-reliability")
    expect(page).to_have_url(re.compile(r"/app/reliability$"))
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#to-planner")).to_have_text("← 返回计划管理看板")
    page.click("#to-planner")
    expect(page).to_have_url(re.compile(r"/app/planner$"))
    expect(page.locator("#sign-out")).to_be_visible()
    page.goto(f"{live_server.url}/app/planner?lang=en")
    expect(page.locator("#to-reliability")).to_have_text("Supply reliability indices →")
    page.goto(f"{live_server.url}/app/reliability?lang=en")
    expect(page.locator("#to-planner")).to_have_text("← Back to the planner dashboard")


# lv: 12.50 per interruption longer than 15 min; mv: 100.00 per one longer than 30 min
POLICY = """
[category.lv]
long_hours = 0.25
long_credit = "12.50"
[category.mv]
long_hours = 0.5
long_credit = "100.00"
"""


def test_the_compensation_section_says_a_missing_policy_then_draws_the_totals(
    page: Any, live_server: LiveServer, start: datetime, tmp_path: Path
) -> None:
    """Without a policy the section says so (no chart, no CSV, never zeros); with one it draws
    the service's totals per district and category. Hand-checked for T-REL (the fault above):
    SP-REL-1 and SP-REL-2 (lv, back after 30 min) 12.50 each = 25.00; SP-REL-3 (mv, back after
    60 min) 100.00."""
    settings = live_server.settings.reliability
    assert settings.compensation_path is None  # tests have no development default
    signed_in(page, live_server.tokens["planner"], "/app/reliability")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    section = page.locator("#panel-compensation")
    expect(section).to_have_attribute("data-state", "missing")
    expect(section.locator("#comp-problem")).to_contain_text("尚未设置停电赔偿政策")
    expect(page.locator("#panel-compensation-csv")).to_have_count(0)
    expect(section.locator(".chart")).to_have_count(0)
    policy = tmp_path / "compensation.toml"
    policy.write_text(POLICY, encoding="utf-8")
    settings.compensation_path = policy
    try:
        page.click("#indices-form button[type=submit]")
        expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
        expect(section).to_have_attribute("data-state", "loaded")
        year = clock.to_china(start).year
        report = httpx.get(
            f"{live_server.url}/reliability/compensation",
            params={"start": f"{year}-01-01"},
            headers={"Authorization": f"Bearer {live_server.tokens['planner']}"},
        ).json()
        drawn = page.evaluate(CHART, '#panel-compensation .chart[data-chart="compensation"]')
        names = {"lv": "低压用户", "mv": "中压用户"}
        for row in report["totals"]:
            assert _series(drawn, names[row["category"]])[row["district"]] == float(row["total"])
        assert _series(drawn, "低压用户")["T-REL"] == 25.0
        assert _series(drawn, "中压用户")["T-REL"] == 100.0
        expect(section.locator("#comp-dev-policy")).to_have_count(0)  # the operator's file
        table = section.locator("details.data-table")
        expect(table.locator("tr", has_text="T-REL").first).to_contain_text("25.00")
        expect(table.locator("tr", has_text="全部").last).to_contain_text(
            report["overall"]["total"]
        )
        audit(page)
        shot(page, f"reliability-compensation-{page.viewport_size['width']}")
        with page.expect_download() as download:
            page.click("#panel-compensation-csv")
        text = download.value.path().read_text(encoding="utf-8-sig")
        assert text.splitlines()[0].startswith("供电点,户号")
        assert "SP-REL-3,REL-3,mv,T-REL,rural,是,1,1,0,100.00,0.00,100.00" in text
        assert "周一" not in text and "13900000001" not in text
        page.goto(f"{live_server.url}/app/reliability?lang=en")
        expect(page.locator("#panel-compensation")).to_have_attribute("data-state", "loaded")
        expect(page.locator("#panel-compensation-title")).to_contain_text("Compensation")
        expect(page.locator("#panel-compensation details.data-table")).to_contain_text(
            "Total (yuan)"
        )
    finally:
        settings.compensation_path = None
    page.reload()
    expect(page.locator("#panel-compensation #comp-problem")).to_contain_text(
        "No compensation policy is set"
    )
