"""The planner dashboard in a real browser: the charts show the seeded figures; CSV per view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.planner_seed import Seeded, seed
from tests.web.support import LiveServer, audit, shot, signed_in


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> Seeded:
    return seed(live_server)


def value(page: Any, selector: str) -> float:
    mark = page.locator(selector)
    expect(mark).to_have_count(1)
    return float(mark.get_attribute("data-value"))


def test_planner_dashboard_charts_show_the_seeded_figures(
    phone: Any, live_server: LiveServer, seeded: Seeded
) -> None:
    signed_in(phone, live_server.tokens["planner"], "/app/planner")
    expect(phone.locator("#panels")).to_have_attribute("data-loaded", "true")

    # Time-limit compliance (end to end): FT-1 met 2 of 3, FT-2 2 of 2, the district 4 of 5.
    compliance = "#panel-compliance rect"
    assert value(phone, f'{compliance}[data-label="FT-1 福田一班"]') == pytest.approx(2 / 3)
    assert value(phone, f'{compliance}[data-label="FT-2 福田二班"]') == 1.0
    assert value(phone, f'{compliance}[data-label="福田测试区"]') == pytest.approx(0.8)
    # First-pass acceptance: FT-1 2 of 3, FT-2 1 of 2, the district 3 of 5.
    first = "#panel-first-pass rect"
    assert value(phone, f'{first}[data-label*="FT-1"]') == pytest.approx(2 / 3)
    assert value(phone, f'{first}[data-label*="FT-2"]') == pytest.approx(0.5)
    assert value(phone, f'{first}[data-label*="福田测试区"]') == pytest.approx(0.6)
    # One-visit completion: FT-1 2 of 3, FT-2 1 of 2, the district 3 of 5.
    assert value(phone, '#panel-one-visit rect[data-label*="FT-1"]') == pytest.approx(2 / 3)
    assert value(phone, '#panel-one-visit rect[data-label*="FT-2"]') == pytest.approx(0.5)
    assert value(phone, '#panel-one-visit rect[data-label*="福田测试区"]') == pytest.approx(0.6)
    # Over time: two months back half of everything; one month back all limits met.
    trend = "#panel-trend circle"
    m2, m1 = seeded.month_2, seeded.month_1
    assert value(phone, f'{trend}[data-series="验收一次通过率"][data-label="{m2}"]') == 0.5
    assert value(phone, f'{trend}[data-series="时限达标率"][data-label="{m2}"]') == 0.5
    assert value(phone, f'{trend}[data-series="时限达标率"][data-label="{m1}"]') == 1.0
    assert value(phone, f'{trend}[data-series="一次上门完成率"][data-label="{m1}"]') == (
        pytest.approx(2 / 3)
    )
    # Pareto: earthing failed twice, the seals once.
    assert value(phone, '#panel-pareto rect[data-label="保护接地电阻"]') == 2
    assert value(phone, '#panel-pareto rect[data-label="表计及表箱封印编号"]') == 1
    # The overdue order is listed (a row per clock), red, with a link to it.
    link = phone.locator(f'a[href="/app/#/order/{seeded.overdue_order}"]')
    row = phone.locator("#panel-attention li", has=link, has_text="全流程时限")
    expect(row).to_have_class("flag row--overdue")
    expect(row.locator(".pill--overdue")).to_have_text("已超时")
    expect(row.get_by_role("link")).to_be_visible()
    # Flags are named in the page's language; the server's reason keeps the specifics.
    pill = phone.locator('#panel-offsystem .pill[data-code="installed_too_soon"]').first
    expect(pill).to_have_text("受理后装表过快")
    audit(phone)
    shot(phone, "planner-dashboard-360")


def test_each_view_downloads_as_csv_and_flags_match_the_service(
    phone: Any, live_server: LiveServer, seeded: Seeded, tmp_path: Path
) -> None:
    token = live_server.tokens["planner"]
    signed_in(phone, token, "/app/planner")
    expect(phone.locator("#panels")).to_have_attribute("data-loaded", "true")
    with phone.expect_download() as info:
        phone.locator("#panel-compliance-csv").click()
    path = tmp_path / "compliance.csv"
    info.value.save_as(path)
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "group,id,name,met,missed,finished,rate"
    assert any(
        line.startswith("district,") and ",福田测试区,4,1,5,0.8" in line
        for line in text.splitlines()
    )
    with phone.expect_download() as info:
        phone.locator("#panel-one-visit-csv").click()
    path = tmp_path / "one-visit.csv"
    info.value.save_as(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "group,key,label,energised,one_visit,rate"
    assert any(line.startswith("district,") and line.endswith("福田测试区,5,3,0.6") for line in lines)
    assert sum(line.startswith("all,") for line in lines) == 1
    for panel in (
        "trend",
        "first-pass",
        "one-visit",
        "pareto",
        "attention",
        "evidence",
        "offsystem",
    ):
        expect(phone.locator(f"#panel-{panel}-csv")).to_be_enabled()
    # Flag lists show exactly what the services report.
    headers = {"Authorization": f"Bearer {token}"}
    for panel, path_ in (("evidence", "/media/flags"), ("offsystem", "/review-flags")):
        rows = httpx.get(f"{live_server.url}{path_}?limit=500", headers=headers).json()
        expect(phone.locator(f"#panel-{panel} li.flag")).to_have_count(len(rows))
