"""The planner dashboard in a real browser: ECharts draws the seeded figures at a desktop size
(1366×768) and on a phone (390 px wide) without sideways scrolling; each view downloads as CSV,
the reports as the server's export keyed by code and name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import _context, _csp_violation
from tests.web.planner_seed import CHINA, LINE, Seeded, seed, seed_inspections
from tests.web.support import LiveServer, audit, shot, signed_in

DESKTOP = {"width": 1366, "height": 768}
PHONE_390 = {"width": 390, "height": 844}

# What a chart draws, from its ECharts instance: the categories of its category axis and each
# series' name and data; and the drawn size of the chart against its box.
CHART = """(selector) => {
  const box = document.querySelector(selector);
  if (!box) return null;
  const chart = echarts.getInstanceByDom(box);
  if (!chart) return null;
  const o = chart.getOption();
  const axis = [...(o.yAxis || []), ...(o.xAxis || [])].find(a => a.type === 'category');
  const canvas = box.querySelector('canvas');
  return {
    categories: axis ? axis.data : [],
    series: o.series.map(s => ({name: s.name, data: s.data})),
    width: chart.getWidth(),
    box: box.getBoundingClientRect().width,
    canvas: canvas ? canvas.getBoundingClientRect().width : 0,
  };
}"""


# The drawn width of every chart's canvas beside its box's width.
SIZES = """() => [...document.querySelectorAll('.chart')].map(box => ({
  chart: box.closest('section').id + '/' + box.dataset.chart,
  box: box.getBoundingClientRect().width,
  canvas: (box.querySelector('canvas') || {getBoundingClientRect: () => ({width: 0})})
    .getBoundingClientRect().width,
}))"""


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    seed_inspections(live_server, tmp_path_factory.mktemp("planner"))
    return seed(live_server)


@pytest.fixture(params=[DESKTOP, PHONE_390], ids=["1366x768", "390px"])
def page(request: Any, browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A page at a desktop or a phone size; JavaScript errors and CSP refusals fail the test."""
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


def chart(page: Any, selector: str) -> dict[str, Any]:
    found = page.evaluate(CHART, selector)
    assert found is not None, f"no chart drawn at {selector}"
    return dict(found)


def bars(page: Any, selector: str) -> dict[str, float]:
    """Category → value of a chart's first series."""
    drawn = chart(page, selector)
    return dict(zip(drawn["categories"], drawn["series"][0]["data"], strict=True))


def series(page: Any, selector: str, name: str) -> dict[str, float | None]:
    drawn = chart(page, selector)
    data = next(s["data"] for s in drawn["series"] if s["name"] == name)
    return dict(zip(drawn["categories"], data, strict=True))


def today() -> str:
    return datetime.now(CHINA).date().isoformat()


def api(live: LiveServer, path: str, params: dict[str, str]) -> Any:
    headers = {"Authorization": f"Bearer {live.tokens['planner']}"}
    response = httpx.get(f"{live.url}{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def monthly(live: LiveServer, month: str) -> dict[str, float | None]:
    """The service's figures of one month ("YYYY-MM"), as the trend asks for them."""
    first = date.fromisoformat(f"{month}-01")
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    period = {"from": first.isoformat(), "to": min(last.isoformat(), today())}
    passes = api(live, "/planner/first-pass", period | {"group_by": "crew"})
    checked = sum(r["checked"] for r in passes)
    one_visit = next(r for r in api(live, "/planner/one-visit", period) if r["code"] == "all")
    e2e = next(
        r for r in api(live, "/deadlines/compliance", period)["rows"] if r["clock"] == "end_to_end"
    )
    return {
        "first_pass": sum(r["passed_first"] for r in passes) / checked if checked else None,
        "one_visit": one_visit["rate"],
        "compliance": e2e["rate"],
    }


def open_dashboard(page: Any, live_server: LiveServer) -> None:
    signed_in(page, live_server.tokens["planner"], "/app/planner")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")


def test_charts_draw_the_seeded_figures_and_fit_the_screen(
    page: Any, live_server: LiveServer, seeded: Seeded
) -> None:
    open_dashboard(page, live_server)
    # Time-limit compliance (end to end): PT-1 met 2 of 3, PT-2 2 of 2, the district 4 of 5.
    crews = bars(page, '#panel-compliance .chart[data-chart="crew"]')
    assert crews["PT-1 计划一班"] == pytest.approx(2 / 3)
    assert crews["PT-2 计划二班"] == 1.0
    assert bars(page, '#panel-compliance .chart[data-chart="district"]')[
        "T-PLN 计划测试区"
    ] == pytest.approx(0.8)
    # First-pass acceptance: PT-1 2 of 3, PT-2 1 of 2, the district 3 of 5 (same keys).
    first = bars(page, '#panel-first-pass .chart[data-chart="crew"]')
    assert first["PT-1 计划一班"] == pytest.approx(2 / 3)
    assert first["PT-2 计划二班"] == pytest.approx(0.5)
    assert bars(page, '#panel-first-pass .chart[data-chart="district"]')[
        "T-PLN 计划测试区"
    ] == pytest.approx(0.6)
    # One-visit completion: PT-1 2 of 3, PT-2 1 of 2, the district 3 of 5.
    one = bars(page, '#panel-one-visit .chart[data-chart="crew"]')
    assert one["PT-1 计划一班"] == pytest.approx(2 / 3)
    assert one["PT-2 计划二班"] == pytest.approx(0.5)
    assert bars(page, '#panel-one-visit .chart[data-chart="district"]')[
        "T-PLN 计划测试区"
    ] == pytest.approx(0.6)
    # Over time (all orders, the demo's history included): each month's point is the
    # service's figure for that month, the seeded months among them.
    trend = "#panel-trend .chart"
    for month in (seeded.month_2, seeded.month_1):
        want = monthly(live_server, month)
        assert series(page, trend, "验收一次通过率")[month] == pytest.approx(want["first_pass"])
        assert series(page, trend, "一次上门完成率")[month] == pytest.approx(want["one_visit"])
        assert series(page, trend, "时限达标率")[month] == pytest.approx(want["compliance"])
    # Pareto (all orders): the service's failing items in its order, the seeded ones among
    # them; the cumulative line ends at 100 %.
    pareto = chart(page, "#panel-pareto .chart")
    shown = {"from": page.input_value("#period-from"), "to": page.input_value("#period-to")}
    rows = api(live_server, "/planner/failing-items", shown)
    assert pareto["categories"] == [r["label"] for r in rows]
    assert pareto["series"][0]["data"] == [r["failures"] for r in rows]
    assert "保护接地电阻" in pareto["categories"] and "表计及表箱封印编号" in pareto["categories"]
    assert pareto["series"][1]["data"][-1] == 1.0
    # Defect backlog of the seeded line: one open defect of severity 3, one of severity 2.
    assert series(page, "#panel-backlog .chart", "严重等级 3")[LINE] == 1
    assert series(page, "#panel-backlog .chart", "严重等级 2")[LINE] == 1
    # Inspection coverage: one of the line's two poles seen in the last 90 days.
    assert bars(page, "#panel-coverage .chart")[LINE] == 0.5
    # A plain table beside each chart carries the same figures.
    table = page.locator("#panel-compliance details.data-table").first
    expect(table.locator("tr", has_text="PT-1")).to_contain_text("66.7%")
    # The overdue order is listed (a row per clock), red, with a link to it.
    link = page.locator(f'a[href="/app/#/order/{seeded.overdue_order}"]')
    row = page.locator("#panel-attention li", has=link, has_text="全流程时限")
    expect(row).to_have_class("flag row--overdue")
    expect(row.locator(".pill--overdue")).to_have_text("已超时")
    # Flags are named in the page's language.
    pill = page.locator('#panel-offsystem .pill[data-code="installed_too_soon"]').first
    expect(pill).to_have_text("受理后装表过快")
    # Every chart is drawn at its box's width, and nothing scrolls sideways.
    width = page.viewport_size["width"]
    sizes = page.evaluate(SIZES)
    assert len(sizes) == 10  # trend, 3 × 2 bars, Pareto, backlog, coverage
    for drawn in sizes:
        assert 0 < drawn["canvas"] <= drawn["box"] + 1 <= width, drawn
    audit(page)
    shot(page, f"planner-dashboard-{width}")


# The Pareto chart's item labels: how ECharts lays them out, and the widest Latin word of them.
PARETO_LABELS = """() => {
  const box = document.querySelector('#panel-pareto .chart');
  const o = echarts.getInstanceByDom(box).getOption();
  const label = o.xAxis[0].axisLabel;
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = (label.fontSize || 12) + 'px sans-serif';
  const words = o.xAxis[0].data.join(' ').split(/[^A-Za-z0-9()]+/).filter(w => w);
  return {overflow: label.overflow, rotate: label.rotate || 0, width: label.width,
          widest: Math.max(0, ...words.map(w => ctx.measureText(w).width)),
          labels: o.xAxis[0].data};
}"""


def test_pareto_item_names_wrap_on_a_desktop_and_slant_on_a_phone(
    page: Any, live_server: LiveServer, seeded: Seeded
) -> None:
    open_dashboard(page, live_server)
    drawn = page.evaluate(PARETO_LABELS)
    assert "保护接地电阻" in drawn["labels"] and "表计及表箱封印编号" in drawn["labels"]
    if page.viewport_size["width"] >= 600:
        # Room enough: each name gets its column and wraps (at spaces in English), never cut.
        assert drawn["overflow"] == "break" and drawn["rotate"] == 0, drawn
        assert drawn["widest"] <= drawn["width"], drawn
        assert drawn["width"] >= 9 * 11, drawn  # nine 11 px characters a line at least
    else:
        assert drawn["overflow"] == "truncate" and drawn["rotate"] == 35, drawn


def test_charts_follow_the_window_size(page: Any, live_server: LiveServer, seeded: Seeded) -> None:
    open_dashboard(page, live_server)
    before = chart(page, "#panel-trend .chart")["width"]
    page.set_viewport_size({"width": 360 if before > 600 else 1200, "height": 800})
    # No sleep: wait until the chart reports a new width.
    page.wait_for_function(
        "(w) => echarts.getInstanceByDom(document.querySelector('#panel-trend .chart'))"
        ".getWidth() !== w",
        arg=before,
    )
    after = chart(page, "#panel-trend .chart")
    assert after["canvas"] == pytest.approx(after["box"], abs=1)
    # Crew names get the room the new width gives them (truncated on a phone, full otherwise).
    label_width = page.evaluate(
        "() => echarts.getInstanceByDom(document.querySelector("
        "'#panel-compliance .chart[data-chart=\"crew\"]')).getOption().yAxis[0].axisLabel.width"
    )
    assert label_width == (110 if after["width"] < 600 else 170)
    audit(page)


def download(page: Any, button: str, tmp_path: Path) -> list[str]:
    with page.expect_download() as info:
        page.locator(button).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_text(encoding="utf-8-sig").splitlines()


@pytest.mark.parametrize("page", [PHONE_390], ids=["390px"], indirect=True)
def test_each_view_downloads_as_csv_and_flags_match_the_service(
    page: Any, live_server: LiveServer, seeded: Seeded, tmp_path: Path
) -> None:
    token = live_server.tokens["planner"]
    open_dashboard(page, live_server)
    # The reports are the server's CSV, rows keyed by code and name as in the JSON.
    lines = download(page, "#panel-compliance-csv", tmp_path)
    assert "PT-1,计划一班,全流程时限,2,1,3,0.6667" in lines
    assert "PT-2,计划二班,全流程时限,2,0,2,1.0000" in lines
    lines = download(page, "#panel-compliance-csv-district", tmp_path)
    assert "T-PLN,计划测试区,全流程时限,4,1,5,0.8000" in lines
    lines = download(page, "#panel-one-visit-csv-district", tmp_path)
    assert "T-PLN,计划测试区,5,3,0.6000" in lines
    assert sum(line.startswith("all,全部,") for line in lines) == 1
    lines = download(page, "#panel-first-pass-csv", tmp_path)
    assert "PT-2,计划二班,2,1,0.5000" in lines
    lines = download(page, "#panel-coverage-csv", tmp_path)
    assert f"{LINE},2,1,0.5000" in lines
    # Coverage dated by the import of the batch (the seeded batch is imported today).
    lines = download(page, "#panel-coverage-csv-import", tmp_path)
    assert f"{LINE},2,1,0.5000" in lines
    page.select_option("#coverage-basis", "import")
    expect(page.locator("#panel-coverage details.data-table")).to_contain_text("50")
    for panel in (
        "trend",
        "first-pass",
        "one-visit",
        "compliance",
        "pareto",
        "backlog",
        "coverage",
        "lead-times",
        "attention",
        "evidence",
        "offsystem",
    ):
        expect(page.locator(f"#panel-{panel}-csv")).to_be_enabled()
    # Flag lists show exactly what the services report.
    headers = {"Authorization": f"Bearer {token}"}
    for panel, path_ in (("evidence", "/media/flags"), ("offsystem", "/review-flags")):
        rows = httpx.get(f"{live_server.url}{path_}?limit=500", headers=headers).json()
        expect(page.locator(f"#panel-{panel} li.flag")).to_have_count(len(rows))
    # The attention and flag lists download the server's CSV (headers in the page's language),
    # one line per row the page lists.
    for panel, first in (
        ("attention", "工单号,班组编码,班组,供电所编码,供电所,阶段,时限,"),
        ("evidence", "工单号,班组编码,班组,供电所编码,供电所,影像编号,"),
        ("offsystem", "工单号,班组编码,班组,供电所编码,供电所,阶段,标记,原因,"),
    ):
        lines = download(page, f"#panel-{panel}-csv", tmp_path)
        assert lines[0].startswith(first), (panel, lines[0])
        shown = page.locator(f"#panel-{panel} li.flag").count()
        assert len(lines) - 1 == shown, (panel, lines)
