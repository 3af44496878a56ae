"""One clock for people: China time (UTC+8) in CSV exports and pages, UTC in the JSON API.

An event at 2026-12-04T17:30Z is on 2026-12-05 in Beijing: every export and page a person
reads says 12-05 (CSV with its offset, ``2026-12-05T01:30:00+08:00``), booleans in CSV are
是/否 or yes/no by the reader's language, and the JSON of the same data stays UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.requests import Request

from field_api import language
from field_api.auth import service as auth_service
from field_api.callbacks import rules as callback_rules
from field_api.checklists import service as checklists
from field_api.common import clock, csvfiles
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.deadlines import service as deadlines
from field_api.inspections import importing
from field_api.messages import csv_header
from field_api.visits import service as visits
from field_api.work_orders import service as orders
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_order, make_user
from tests.clocks import ChinaClock

EVENT = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)  # 2026-12-05 01:30 in Beijing
NEAR = {"lat": 22.5334, "lon": 113.9306}  # beside tests.builders' order position


class Colour(StrEnum):
    red = "red"


@dataclass(frozen=True)
class Row:
    name: str
    at: datetime | None
    on: date
    ok: bool
    share: float
    count: int
    colour: Colour


ROWS = [
    Row("=SUM(A1)", EVENT, date(2026, 12, 5), True, 0.5, -3, Colour.red),
    Row("乙", None, date(2026, 1, 2), False, 1.0, 7, Colour.red),
]
COLUMNS = ["name", "at", "on", "ok", "share", "count", "colour"]


# ------------------------------------------------------------------ the one writer


def test_csv_writes_china_time_with_offset_and_booleans_in_chinese_by_default() -> None:
    assert csvfiles.csv_text(ROWS, COLUMNS) == (
        "\ufeffname,at,on,ok,share,count,colour\n"
        "'=SUM(A1),2026-12-05T01:30:00+08:00,2026-12-05,是,0.5000,-3,red\n"
        "乙,,2026-01-02,否,1.0000,7,red\n"
    )


def test_csv_writes_yes_and_no_in_english_and_names_columns_for_people() -> None:
    text = csvfiles.csv_text(
        ROWS, COLUMNS, language="en", header=["Name", "At", "On", "OK", "Share", "N", "C"]
    )
    assert text.splitlines()[0] == "\ufeffName,At,On,OK,Share,N,C"
    assert text.splitlines()[1] == "'=SUM(A1),2026-12-05T01:30:00+08:00,2026-12-05,yes,0.5000,-3,red"
    assert text.splitlines()[2] == "乙,,2026-01-02,no,1.0000,7,red"
    with pytest.raises(ValueError, match="every column"):
        csvfiles.csv_text(ROWS, COLUMNS, header=["one"])


def test_csv_cells_take_any_zone_and_naive_times_as_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert csvfiles.cell(datetime(2026, 12, 4, 12, 30, tzinfo=new_york)) == (
        "2026-12-05T01:30:00+08:00"
    )
    assert csvfiles.cell(datetime(2026, 12, 4, 17, 30)) == "2026-12-05T01:30:00+08:00"
    assert csvfiles.cell(EVENT.replace(microsecond=999_999)) == "2026-12-05T01:30:00+08:00"
    assert csvfiles.csv_text([{"at": EVENT, "ok": True}], ["at", "ok"], language="en") == (
        "\ufeffat,ok\n2026-12-05T01:30:00+08:00,yes\n"
    )


# ------------------------------------------------------------------ the request's language


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "zh-CN"),
        ({"Accept-Language": "en"}, "en"),
        ({"Accept-Language": "en-GB,en;q=0.9"}, "en"),
        ({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh-CN"),
        ({"Accept-Language": "fr-FR, en;q=0.5, zh;q=0.4"}, "en"),
        ({"Accept-Language": "en;q=0, zh-TW"}, "zh-CN"),
        ({"Accept-Language": "de, *;q=0.5"}, "zh-CN"),
        ({"Accept-Language": "en;q=abc"}, "zh-CN"),
        ({"Accept-Language": "zh-CN", "Cookie": "fo_lang=en"}, "en"),  # the page's switch wins
        ({"Accept-Language": "en-US", "Cookie": "fo_lang=zh-CN"}, "zh-CN"),
    ],
)
def test_language_of_a_request(headers: dict[str, str], expected: str) -> None:
    assert language.language_of(_request(headers)) == expected


def test_a_huge_accept_language_header_is_read_only_at_its_start() -> None:
    assert language.from_accept_language("x-" * 10_000 + ",en") is None
    assert language.from_accept_language("en," + "x," * 10_000) == "en"


# ------------------------------------------------------------------ one time zone


def test_one_china_time_zone_everywhere() -> None:
    assert clock.CHINA_TZ.utcoffset(None) == timedelta(hours=8)
    for alias in (
        deadlines.CHINA_TZ,
        callback_rules.CHINA_TZ,
        checklists.CHINA,
        importing.CAMERA_ZONE,
    ):
        assert alias is clock.CHINA_TZ
    assert clock.to_china(EVENT).isoformat() == "2026-12-05T01:30:00+08:00"
    assert clock.china_date(EVENT) == date(2026, 12, 5)
    with clock.use_clock(clock.ManualClock(EVENT)):
        assert clock.china_now().isoformat() == "2026-12-05T01:30:00+08:00"
        assert clock.china_today() == date(2026, 12, 5)


# ------------------------------------------------------------------ through HTTP


def test_one_visit_csv_is_china_time_in_both_languages_and_its_json_stays_utc(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    server_clock.set(EVENT)
    crew = make_crew(session)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=crew_token, settings=settings)
    _, planner_token = make_user(session, settings, role=Role.planner)
    one = make_order(session, crew=crew)
    visits.arrive(session, one.id, actor=actor, **NEAR)
    for stage in Stage.surveyed, Stage.scheme_answered, Stage.contract_signed, Stage.installed:
        orders.transition(session, one, stage, actor=actor)
    orders.transition(session, one, Stage.inspected, actor=actor)
    orders.transition(session, one, Stage.energised, actor=actor)
    two = make_order(session, crew=crew)
    first = visits.arrive(session, two.id, actor=actor, **NEAR)
    orders.transition(session, two, Stage.surveyed, actor=actor)
    visits.depart(session, two.id, first.id, actor=actor, **NEAR)
    visits.arrive(session, two.id, actor=actor, **NEAR)
    for stage in (
        Stage.scheme_answered,
        Stage.contract_signed,
        Stage.installed,
        Stage.inspected,
        Stage.energised,
    ):
        orders.transition(session, two, stage, actor=actor)
    session.commit()

    def export(day: str, **headers: str) -> dict[int, str]:
        r = client.get(
            "/planner/one-visit.csv",
            params={"from": day, "to": day},
            headers=auth(planner_token, **headers),
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        lines = r.text.lstrip("\ufeff").splitlines()
        columns = [  # named for people in the answer's language
            "order_id", "crew_code", "crew_name", "district_code", "district_name", "customer",
            "visits", "one_visit", "energised_at",
        ]
        assert lines[0] == ",".join(csv_header(columns, r.headers["content-language"]))
        return {int(line.split(",")[0]): line for line in lines[1:]}

    # Chinese by default: 是/否 and Beijing time with its offset (the 5th, not the 4th).
    zh = export("2026-12-05")
    assert zh[one.id].endswith(",1,是,2026-12-05T01:30:00+08:00")
    assert zh[two.id].endswith(",2,否,2026-12-05T01:30:00+08:00")
    # English by Accept-Language; the same instant.
    en = export("2026-12-05", **{"Accept-Language": "en-US,en;q=0.9"})
    assert en[one.id].endswith(",1,yes,2026-12-05T01:30:00+08:00")
    assert en[two.id].endswith(",2,no,2026-12-05T01:30:00+08:00")
    # The page's language switch (cookie) wins over the browser's Accept-Language.
    client.cookies.set("fo_lang", "en")
    try:
        switched = export("2026-12-05", **{"Accept-Language": "zh-CN"})
    finally:
        client.cookies.clear()
    assert switched[one.id].endswith(",1,yes,2026-12-05T01:30:00+08:00")
    # The report's days are China days too: nothing was energised on the 4th in Beijing.
    assert export("2026-12-04") == {}

    # The JSON of the same stage change stays UTC.
    r = client.get(f"/work-orders/{one.id}/transitions", headers=auth(crew_token))
    assert r.status_code == 200, r.text
    energised = next(t for t in r.json() if t["to_stage"] == "energised")
    assert datetime.fromisoformat(energised["at"]) == EVENT
    assert energised["at"].endswith(("Z", "+00:00"))
    assert energised["at"].startswith("2026-12-04T17:30:00")


def test_tracking_page_shows_the_beijing_date_of_a_utc_evening_event(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    server_clock.set(EVENT)
    crew = make_crew(session)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=crew_token, settings=settings)
    order = make_order(session, crew=crew)
    orders.transition(session, order, Stage.surveyed, actor=actor)
    session.commit()
    link = client.get(f"/work-orders/{order.id}/tracking", headers=auth(crew_token))
    assert link.status_code == 200, link.text
    token = link.json()["token"]
    page = client.get(f"/t/{token}")
    assert page.status_code == 200
    assert "2026-12-05 01:30" in page.text
    assert "2026-12-04" not in page.text
    body = client.get(f"/track/{token}").json()
    surveyed = next(s for s in body["steps"] if s.get("at"))
    assert datetime.fromisoformat(surveyed["at"]) == EVENT
