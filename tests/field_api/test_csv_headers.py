"""Every CSV export names its columns in the reader's language (field_api.messages.csv_header)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.messages import MESSAGES, csv_header
from tests.builders import auth, make_user

WINDOW = {"from": "2026-01-01", "to": "2026-01-31"}
# Every CSV download: (path, query). A new one must be listed here (see the last test).
EXPORTS: list[tuple[str, dict[str, str]]] = [
    ("/planner/first-pass.csv", WINDOW),
    ("/planner/first-pass.csv", WINDOW | {"group_by": "district"}),
    ("/planner/failing-items.csv", WINDOW),
    ("/planner/one-visit.csv", WINDOW),
    ("/planner/one-visit.csv", WINDOW | {"group_by": "crew"}),
    ("/deadlines/compliance.csv", WINDOW),
    ("/planner/trend.csv", WINDOW),
    ("/planner/defect-backlog", {"format": "csv"}),
    ("/planner/inspection-coverage", {"format": "csv"}),
    ("/planner/repair-lead-times", {"format": "csv"}),
    ("/deadlines/attention.csv", {}),
    ("/media/flags.csv", {}),
    ("/review-flags.csv", {}),
    ("/reliability/customers.csv", {}),
    ("/reliability/indices.csv", {"year": "2026"}),
    ("/reliability/indices.csv", {"year": "2026", "definition": "ieee1366"}),
    ("/reliability/compensation.csv", {}),
    ("/reliability/outage-budget.csv", {"year": "2026"}),
    ("/reliability/budgets.csv", {"year": "2026"}),
    ("/reliability/planned-outages.csv", {}),
    ("/reliability/merge-proposals.csv", {}),
    ("/reliability/live-line-jobs.csv", {"year": "2026"}),
]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _header(client: TestClient, token: str, path: str, query: dict[str, str], **h: str) -> str:
    r = client.get(path, params=query, headers=auth(token, **h))
    assert r.status_code == 200, (path, r.text)
    assert r.headers["content-type"].startswith("text/csv")
    return r.text.lstrip("\ufeff").splitlines()[0]


@pytest.fixture
def admin(session: Session, settings: Settings, tmp_path: Path) -> str:
    policy = tmp_path / "compensation.toml"  # the compensation export needs a policy
    policy.write_text('[category.lv]\nlong_hours = 4\nlong_credit = "20.00"\n', encoding="utf-8")
    settings.reliability.compensation_path = policy
    _, token = make_user(session, settings, role=Role.admin)
    session.commit()
    return token


@pytest.mark.parametrize(("path", "query"), EXPORTS)
def test_csv_header_is_chinese_by_default_and_english_on_request(
    client: TestClient, admin: str, path: str, query: dict[str, str]
) -> None:
    zh = _header(client, admin, path, query).split(",")
    assert all(CJK.search(cell) for cell in zh), (path, zh)  # every column named in Chinese
    en = _header(client, admin, path, query, **{"Accept-Language": "en-GB,en;q=0.9"}).split(",")
    assert len(en) == len(zh)
    assert not any(CJK.search(cell) or "_" in cell for cell in en), (path, en)
    client.cookies.set("fo_lang", "en")  # the page's switch wins over the browser's header
    assert _header(client, admin, path, query, **{"Accept-Language": "zh-CN"}).split(",") == en


def test_csv_header_maps_known_columns_and_keeps_unknown_ones() -> None:
    assert csv_header(["order_id", "energised_at"], "zh-CN") == ["工单号", "送电时间"]
    assert csv_header(["order_id", "energised_at"], "en") == ["Order", "Energised at"]
    assert csv_header(["no_such_column"], "en") == ["no_such_column"]
    labels = [k for k in MESSAGES if k.startswith("csv.")]
    assert all(MESSAGES[k]["zh-CN"] != MESSAGES[k]["en"] for k in labels)


def test_every_csv_route_is_checked_here(app: FastAPI) -> None:
    csv_paths = {
        path
        for path, operations in app.openapi()["paths"].items()
        for op in operations.values()
        if "text/csv" in op.get("responses", {}).get("200", {}).get("content", {})
    }
    assert csv_paths == {path for path, _ in EXPORTS}
