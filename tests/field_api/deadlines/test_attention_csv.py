"""The attention list as the server's CSV (``/deadlines/attention.csv``): the rows of
``/deadlines/attention``, crew and district by code and name, 是/否 or yes/no by the reader's
language, headers named for people."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.auth.models import Crew, District
from field_api.common import i18n
from field_api.config import Settings
from field_api.messages import csv_header
from field_api.work_orders.models import WorkOrder
from tests.builders import auth
from tests.clocks import ChinaClock
from tests.field_api.deadlines.test_endpoints import _setup

COLUMNS = [
    "order_id",
    "crew_code",
    "crew_name",
    "district_code",
    "district_name",
    "stage",
    "clock",
    "governing",
    "due_on",
    "status",
    "provisional",
    "paused",
]


def _rows(client: TestClient, token: str, **headers: str) -> tuple[list[str], list[list[str]]]:
    r = client.get(
        "/deadlines/attention.csv", params={"as_of": "2025-10-13"}, headers=auth(token, **headers)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="attention-2025-10-13.csv"'
    assert r.text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert lines[0] == csv_header(COLUMNS, r.headers["content-language"])
    return lines[0], lines[1:]


def test_attention_csv_lists_the_json_rows_keyed_by_code_and_name_in_both_languages(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id, _, planner_token, _ = _setup(session, settings, clock)
    order = session.get(WorkOrder, order_id)
    assert order is not None and order.crew_id is not None
    crew = session.get(Crew, order.crew_id)
    district = session.get(District, order.district_id)
    assert crew is not None and district is not None
    unit = [crew.code, "测试班组", district.code, "测试区"]

    header, zh = _rows(client, planner_token)
    assert header[:3] == ["工单号", "班组编码", "班组"]
    ours = [row for row in zh if row[0] == str(order_id)]
    # stage, time limit and status by their names for people
    e2e = [str(order_id), *unit, "已受理", "全流程时限", "是", "2025-10-13", "即将超时", "否", "否"]
    assert e2e in ours
    # The same rows as the JSON list (its clocks by code, named here).
    listed = client.get(
        "/deadlines/attention", params={"as_of": "2025-10-13"}, headers=auth(planner_token)
    ).json()["items"]
    assert sorted((r[0], r[6], r[8]) for r in zh) == sorted(
        (str(i["order_id"]), i18n.text(f"clock.{i['clock']}"), i["due_on"]) for i in listed
    )

    header, en = _rows(client, planner_token, **{"Accept-Language": "en"})
    assert header[:3] == ["Order", "Crew code", "Crew"]
    ours = [row for row in en if row[0] == str(order_id) and row[6] == "End to end"]
    assert [row[5:] for row in ours] == [
        ["Accepted", "End to end", "yes", "2025-10-13", "At risk", "no", "no"]
    ]


def test_attention_csv_refuses_a_bad_date_with_a_clear_4xx(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    _, _, planner_token, _ = _setup(session, settings, clock)
    r = client.get(
        "/deadlines/attention.csv", params={"as_of": "2025-13-01"}, headers=auth(planner_token)
    )
    assert r.status_code == 422
    assert r.json()["error"] == "ValidationFailed"


def test_the_attention_list_pages_its_items_and_counts_them_all(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    """One item per page: total and next_offset say what follows, X-Total-Count and the Link
    header say it as every list does, and the counts by crew cover every page."""
    _, _, planner_token, _ = _setup(session, settings, clock)
    params = {"as_of": "2025-10-13"}
    whole = client.get("/deadlines/attention", params=params, headers=auth(planner_token)).json()
    assert whole["total"] == len(whole["items"]) >= 2 and whole["next_offset"] is None
    seen = []
    offset: int | None = 0
    while offset is not None:
        r = client.get(
            "/deadlines/attention",
            params={**params, "limit": 1, "offset": offset},
            headers=auth(planner_token),
        )
        body = r.json()
        assert r.headers["x-total-count"] == str(whole["total"])
        assert len(body["items"]) == 1 and body["total"] == whole["total"]
        assert body["by_district_and_crew"] == whole["by_district_and_crew"]
        assert ('rel="next"' in r.headers.get("link", "")) == (body["next_offset"] is not None)
        seen += body["items"]
        offset = body["next_offset"]
    assert seen == whole["items"]
