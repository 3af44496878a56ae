"""The planner's two flag lists as the server's CSV (``/media/flags.csv``,
``/review-flags.csv``): the rows of their JSON lists, the order's crew and district by code
and name, the flag's message in the reader's language, times in China time with the offset."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api import messages
from field_api.audit import service as audit
from field_api.auth.models import District
from field_api.callbacks.models import ReviewFlag
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.media.analysis import MediaType
from field_api.media.models import MediaFlag, MediaItem
from field_api.media.rules import FlagCode, MediaKind
from field_api.messages import csv_header
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_district, make_order, make_user
from tests.clocks import ChinaClock

EVENT = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)  # 2026-12-05 01:30 in Beijing
CHINA_EVENT = "2026-12-05T01:30:00+08:00"
EN = {"Accept-Language": "en-US,en;q=0.9"}
MEDIA_COLUMNS = [
    "order_id",
    "crew_code",
    "crew_name",
    "district_code",
    "district_name",
    "media_id",
    "media_kind",
    "stage",
    "flag_code",
    "message",
    "flagged_at",
]
REVIEW_COLUMNS = [
    "order_id",
    "crew_code",
    "crew_name",
    "district_code",
    "district_name",
    "stage",
    "flag_code",
    "message",
    "detected_at",
    "resolved_at",
    "resolution",
]
REASONS = [
    {"code": "review_flag.complained", "params": {}},
    {"code": "review_flag.asked_to_pay", "params": {}},
]


def _csv(
    client: TestClient, path: str, token: str, columns: list[str], **params: str | int
) -> list[list[str]]:
    r = client.get(path, params=params, headers=auth(token))
    return _lines(r, columns)


def _lines(r: httpx.Response, columns: list[str]) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    assert r.text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert lines[0] == csv_header(columns, r.headers["content-language"])
    return lines[1:]


@pytest.fixture
def planner(session: Session, settings: Settings) -> str:
    _, token = make_user(session, settings, role=Role.planner)
    session.commit()
    return token


def _media_flag(session: Session, order: WorkOrder) -> MediaItem:
    item = MediaItem(
        client_id=secrets.token_hex(8),
        order_id=order.id,
        stage=Stage.installed,
        kind=MediaKind.meter_after,
        media_type=MediaType.jpeg,
        sha256="0" * 64,
        size_bytes=1000,
    )
    session.add(item)
    session.flush()
    flag = MediaFlag(
        media_id=item.id,
        order_id=order.id,
        code=FlagCode.gps_too_far,
        reason="taken 250 m from the order's location (limit 100 m)",
        params={"distance_m": 250, "limit_m": 100},
        created_at=EVENT,
    )
    session.add(flag)
    session.flush()
    audit.record(session, actor=None, action="media_flag.raise", entity=flag)
    return item


def _review_flag(session: Session, order: WorkOrder) -> ReviewFlag:
    flag = ReviewFlag(
        order_id=order.id,
        kind="callback_irregularity",
        reason="the customer complained; customer says they were asked to pay",
        params={"messages": REASONS},
        detected_at=EVENT,
    )
    session.add(flag)
    session.flush()
    audit.record(session, actor=None, action="review_flag.raise", entity=flag)
    return flag


def test_media_flags_csv_has_the_order_unit_and_the_message_in_both_languages(
    client: TestClient, session: Session, planner: str, server_clock: ChinaClock
) -> None:
    server_clock.set(EVENT)
    crew = make_crew(session)
    order = make_order(session, crew=crew)
    item = _media_flag(session, order)
    session.commit()
    district = session.get(District, crew.district_id)
    assert district is not None

    zh = _csv(client, "/media/flags.csv", planner, MEDIA_COLUMNS, order_id=order.id)
    assert zh == [
        [
            str(order.id),
            crew.code,
            "测试班组",
            district.code,
            "测试区",
            str(item.id),
            "装表后",
            "电能表已安装",
            "gps_too_far",
            "拍摄地点距工单位置 250 米（上限 100 米）",
            CHINA_EVENT,
        ]
    ]
    r = client.get("/media/flags.csv", params={"order_id": order.id}, headers=auth(planner, **EN))
    assert (
        r.headers["content-disposition"] == 'attachment; filename="evidence-flags-2026-12-05.csv"'
    )
    en = _lines(r, MEDIA_COLUMNS)
    assert [row[6:] for row in en] == [
        [
            "Meter installed",
            "Installed",
            "gps_too_far",
            "taken 250 m from the order's location (limit 100 m)",
            CHINA_EVENT,
        ]
    ]
    # The JSON list says the same (in UTC).
    listed = client.get(
        "/media/flags", params={"order_id": order.id}, headers=auth(planner, **EN)
    ).json()
    assert [(f["flag"]["media_id"], f["flag"]["message"]) for f in listed] == [(item.id, en[0][9])]


def test_review_flags_csv_keys_orders_by_code_and_name_and_renders_the_reasons(
    client: TestClient, session: Session, planner: str, server_clock: ChinaClock
) -> None:
    server_clock.set(EVENT)
    district = make_district(session)
    crew = make_crew(session, district=district)
    crewed = make_order(session, crew=crew)
    no_crew = make_order(session, district=district)
    _review_flag(session, crewed)
    _review_flag(session, no_crew)
    session.commit()

    zh = _csv(client, "/review-flags.csv", planner, REVIEW_COLUMNS, district_id=district.id)
    by_order = {row[0]: row for row in zh}
    assert set(by_order) == {str(crewed.id), str(no_crew.id)}
    assert by_order[str(crewed.id)][1:5] == [crew.code, "测试班组", district.code, "测试区"]
    assert by_order[str(no_crew.id)][1:5] == ["", "", district.code, "测试区"]
    for row in zh:
        assert row[5:] == [
            "已受理",
            "callback_irregularity",
            "客户投诉；客户反映被要求付费",
            CHINA_EVENT,
            "",
            "",
        ]
    en = _lines(
        client.get(
            "/review-flags.csv", params={"district_id": district.id}, headers=auth(planner, **EN)
        ),
        REVIEW_COLUMNS,
    )
    assert {(row[5], row[7]) for row in en} == {("Accepted", messages.render_all(REASONS, "en"))}
    assert messages.render_all(REASONS, "en") == (
        "the customer complained; customer says they were asked to pay"
    )


def test_flag_csv_routes_refuse_bad_input_with_a_clear_4xx(
    client: TestClient, planner: str
) -> None:
    for path, params in (
        ("/media/flags.csv", {"limit": 0}),
        ("/media/flags.csv", {"code": "no_such_flag"}),
        ("/review-flags.csv", {"limit": 501}),
        ("/review-flags.csv", {"kind": "no_such_kind"}),
    ):
        r = client.get(path, params=params, headers=auth(planner))
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["error"] == "ValidationFailed"
