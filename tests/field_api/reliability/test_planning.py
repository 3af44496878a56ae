"""Planned outages through HTTP on SQLite and PostgreSQL: the budget refuses an overspend
until a planner approves it with a reason, a merge saves hand-computed customer-hours,
live-line work is reported beside the budget, and customers' notices go out once each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from field_api import workers
from field_api.audit.models import AuditEvent
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.jobs import service as jobs
from field_api.network.models import Transformer
from field_api.reliability import notices
from field_api.reliability.models import Outage, OutageNotice
from field_api.sms import service as sms
from tests.builders import auth, make_user
from tests.clocks import ChinaClock
from tests.sms_support import SmsInbox

SECTIONS = (
    "switch_code,feeder,district,transformer_code\n"
    "SW-1,F-10,D-NS,TX-R1\n"
    "SW-2,F-10,D-NS,TX-R2\n"
)
HEADER = (
    "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
    "connected_on\n"
)
# SW-1 → TX-R1: 3 urban accounts; SW-2 → TX-R2: 2 rural accounts (district D-NS)
CUSTOMERS = HEADER + (
    "A-001,张三丰,13800138001,SP-1,lv,TX-R1,SW-1,urban,2026-01-01\n"
    "A-002,李四,13800138002,SP-1,lv,TX-R1,SW-1,urban,2026-01-01\n"
    "A-003,王五,13800138003,SP-2,lv,TX-R1,SW-1,urban,2026-01-01\n"
    "A-004,赵六,13800138004,SP-3,lv,TX-R2,SW-2,rural,2026-01-01\n"
    "A-005,钱七,13800138005,SP-3,lv,TX-R2,SW-2,rural,2026-01-01\n"
)


def _file(text: str) -> dict[str, Any]:
    return {"file": ("f.csv", text.encode(), "text/csv")}


@pytest.fixture
def people(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> dict[str, str]:
    server_clock.set_china(2026, 4, 1, 9)
    tokens = {}
    for role in (Role.admin, Role.planner, Role.dispatcher, Role.storekeeper):
        tokens[role.value] = make_user(session, settings, role=role)[1]
    for i, code in enumerate(("TX-R1", "TX-R2")):
        session.add(Transformer(code=code, name=code, rated_kva=400, base_load_kva=100,
                                lon=113.9 + i / 100, lat=22.5))
    session.commit()
    admin = tokens["admin"]
    r = client.post("/reliability/sections/imports", files=_file(SECTIONS), headers=auth(admin))
    assert r.status_code == 201, r.text
    r = client.post("/reliability/customers/imports", files=_file(CUSTOMERS), headers=auth(admin))
    assert r.status_code == 201, r.text
    return tokens


def _china(month: int, day: int, hour: int) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+08:00"


def _request(
    client: TestClient, token: str, switch: str, month: int, day: int, start_h: int, end_h: int,
    work: str = "更换柱上开关",
) -> dict[str, Any]:
    r = client.post("/reliability/planned-outages", headers=auth(token), json={
        "work": work, "switch_code": switch, "start_at": _china(month, day, start_h),
        "end_at": _china(month, day, end_h),
    })
    assert r.status_code == 201, r.text
    return dict(r.json())


def _actions(session: Session, action: str) -> int:
    return int(session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    ) or 0)


def test_an_overspend_is_refused_then_approved_with_a_reason(
    client: TestClient, session: Session, people: dict[str, str]
) -> None:
    planner, dispatcher = people["planner"], people["dispatcher"]
    # proposed without last year: (3 x 2.38 + 2 x 8.52) x (1 - 0.5) = 12.09, the method said
    r = client.get("/reliability/budgets/D-NS/2026", headers=auth(planner))
    assert r.status_code == 200, r.text
    assert r.json()["proposed_customer_hours"] == pytest.approx(12.09)
    assert "default_fault_share" in r.json()["method"] and r.json()["set"] is False
    # a planner sets 20 customer-hours (audited); a dispatcher may not
    body = {"customer_hours": 20, "reason": "2026 年检修计划"}
    assert client.put("/reliability/budgets/D-NS/2026", headers=auth(dispatcher),
                      json=body).status_code == 403
    r = client.put("/reliability/budgets/D-NS/2026", headers=auth(planner), json=body)
    assert r.status_code == 200 and r.json()["customer_hours"] == 20
    assert _actions(session, "reliability.budget_set") == 1
    # 3 customers x 4 h = 12: left 8 after it
    first = _request(client, dispatcher, "SW-1", 5, 4, 8, 12)
    assert (first["customers"], first["customer_hours"]) == (3, 12.0)
    assert first["budget_left_after"] == 8.0 and first["overspend"] is False
    r = client.post(f"/reliability/planned-outages/{first['id']}/approve", headers=auth(planner),
                    json={})
    assert r.status_code == 200 and r.json()["state"] == "approved"
    # another 12 would leave -4: refused with a stable code, nothing changed
    second = _request(client, dispatcher, "SW-1", 7, 1, 8, 12)
    assert second["budget_left_after"] == -4.0 and second["overspend"] is True
    url = f"/reliability/planned-outages/{second['id']}/approve"
    r = client.post(url, headers=auth(planner), json={})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "reliability.budget_overspent"
    assert r.json()["params"]["left"] == -4.0
    assert client.get(f"/reliability/planned-outages/{second['id']}",
                      headers=auth(planner)).json()["state"] == "requested"
    # a dispatcher cannot approve; a planner with a reason can (audited as an overspend)
    assert client.post(url, headers=auth(dispatcher),
                       json={"overspend_reason": "迎峰度夏前必须完成"}).status_code == 403
    r = client.post(url, headers=auth(planner), json={"overspend_reason": "迎峰度夏前必须完成"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["overspend_reason"] == "迎峰度夏前必须完成"
    assert r.json()["budget_left_after"] == -4.0
    assert _actions(session, "reliability.planned_outage_approved") == 2
    budget = client.get("/reliability/budgets/D-NS/2026", headers=auth(planner)).json()
    assert (budget["used_customer_hours"], budget["left_customer_hours"]) == (24.0, -4.0)
    # approving twice is a state conflict
    r = client.post(url, headers=auth(planner), json={"overspend_reason": "again"})
    assert r.status_code == 409 and r.json()["code"] == "reliability.planned_outage_state"


def test_bad_requests_are_refused_with_codes(
    client: TestClient, people: dict[str, str]
) -> None:
    dispatcher = people["dispatcher"]
    r = client.post("/reliability/planned-outages", headers=auth(dispatcher), json={
        "work": "检修", "switch_code": "SW-9", "start_at": _china(5, 4, 8),
        "end_at": _china(5, 4, 12)})
    assert r.status_code == 422 and r.json()["code"] == "reliability.section_unknown"
    r = client.post("/reliability/planned-outages", headers=auth(dispatcher), json={
        "work": "检修", "switch_code": "SW-1", "start_at": _china(5, 4, 12),
        "end_at": _china(5, 4, 8)})
    assert r.status_code == 422 and r.json()["code"] == "reliability.planned_outage_invalid"
    r = client.post("/reliability/planned-outages", headers=auth(dispatcher), json={
        "work": "检修", "switch_code": "SW-1", "start_at": "soon", "end_at": _china(5, 4, 8)})
    assert r.status_code == 422
    assert client.get("/reliability/planned-outages/999",
                      headers=auth(dispatcher)).status_code == 404
    r = client.put("/reliability/budgets/NOWHERE/2026", headers=auth(people["planner"]),
                   json={"customer_hours": 10, "reason": "no such district"})
    assert r.status_code == 404 and r.json()["code"] == "reliability.district_unknown"
    r = client.put("/reliability/budgets/D-NS/2026", headers=auth(people["planner"]),
                   json={"customer_hours": -1, "reason": "negative"})
    assert r.status_code == 422
    assert client.post("/reliability/planned-outages", headers=auth(people["storekeeper"]),
                       json={"work": "检修", "switch_code": "SW-1", "start_at": _china(5, 4, 8),
                             "end_at": _china(5, 4, 12)}).status_code == 403


def test_requests_come_from_csv_all_rows_or_none(
    client: TestClient, session: Session, people: dict[str, str]
) -> None:
    dispatcher = people["dispatcher"]
    header = "work,switch_code,start_at,end_at,requester\n"
    good = "更换开关,SW-1,2026-05-04T08:00:00,2026-05-04T12:00:00,蛇口供电所 李工\n"
    bad = (good + "线路消缺,SW-9,2026-05-05T08:00:00,2026-05-05T10:00:00,\n"
           "检修,SW-2,2026-05-06T10:00:00,2026-05-06T08:00:00,\n")
    files = {"file": ("p.csv", (header + bad).encode(), "text/csv")}
    r = client.post("/reliability/planned-outages/imports", files=files, headers=auth(dispatcher))
    assert r.status_code == 422 and r.json()["code"] == "reliability.rows_invalid"
    assert [row["row"] for row in r.json()["params"]["rows"]] == [3, 4]
    assert client.get("/reliability/planned-outages", headers=auth(dispatcher)).json() == []
    files = {"file": ("p.csv", (header + good).encode(), "text/csv")}
    r = client.post("/reliability/planned-outages/imports", files=files, headers=auth(dispatcher))
    assert r.status_code == 201, r.text
    [made] = r.json()
    # a naive time is China time: 08:00 in Shanghai is 00:00 UTC
    assert made["start_at"].startswith("2026-05-04T00:00:00") and made["customer_hours"] == 12.0
    assert made["requester"] == "蛇口供电所 李工"
    csv_text = client.get("/reliability/planned-outages.csv", headers=auth(dispatcher)).text
    assert "蛇口供电所 李工" in csv_text and "申请人" in csv_text


def test_a_merge_saves_the_hand_computed_customer_hours_and_keeps_every_work(
    client: TestClient, session: Session, people: dict[str, str]
) -> None:
    dispatcher, planner = people["dispatcher"], people["planner"]
    # SW-1 (3 customers): 4 h on May 4th (12) and 6 h on May 10th (18) = 30 apart; one 6 h
    # outage = 18: 12 saved. June 30th is beyond the 14-day window; SW-2 is another section.
    a = _request(client, dispatcher, "SW-1", 5, 4, 8, 12, work="更换开关")
    b = _request(client, people["admin"], "SW-1", 5, 10, 9, 15, work="线路消缺")
    _request(client, dispatcher, "SW-1", 6, 30, 8, 10)
    _request(client, dispatcher, "SW-2", 5, 5, 8, 10)
    r = client.get("/reliability/merge-proposals?year=2026", headers=auth(planner))
    assert r.status_code == 200, r.text
    [proposal] = r.json()
    assert proposal["request_ids"] == [a["id"], b["id"]]
    assert proposal["separate_customer_hours"] == 30.0
    assert proposal["merged_customer_hours"] == 18.0
    assert proposal["saved_customer_hours"] == 12.0
    csv_text = client.get("/reliability/merge-proposals.csv?year=2026",
                          headers=auth(planner)).text
    assert "节约时户数" in csv_text and f"{a['id']};{b['id']}" in csv_text
    r = client.post("/reliability/merges", headers=auth(planner),
                    json={"request_ids": [a["id"], b["id"]]})
    assert r.status_code == 200, r.text
    host = r.json()
    assert host["id"] == a["id"] and host["customer_hours"] == 18.0 and host["hours"] == 6.0
    assert [(w["work"], w["request_id"]) for w in host["works"]] == [
        ("更换开关", a["id"]), ("线路消缺", b["id"])]
    assert host["works"][1]["requester"] != host["works"][0]["requester"]
    member = client.get(f"/reliability/planned-outages/{b['id']}", headers=auth(planner)).json()
    assert member["state"] == "merged" and member["merged_into"] == a["id"]
    assert client.get("/reliability/merge-proposals?year=2026",
                      headers=auth(planner)).json() == []
    # a merge of requests on different sections is refused
    c = _request(client, dispatcher, "SW-2", 5, 6, 8, 10)
    r = client.post("/reliability/merges", headers=auth(planner),
                    json={"request_ids": [a["id"], c["id"]]})
    assert r.status_code == 422 and r.json()["code"] == "reliability.merge_invalid"


def test_live_line_work_is_reported_beside_the_budget(
    client: TestClient, people: dict[str, str]
) -> None:
    dispatcher, planner = people["dispatcher"], people["planner"]
    r = client.post("/reliability/live-line-jobs", headers=auth(dispatcher), json={
        "work": "带电更换避雷器", "switch_code": "SW-2", "done_on": "2026-03-20",
        "outage_hours": 5})
    assert r.status_code == 201, r.text
    assert r.json()["customer_hours_avoided"] == 10.0  # 2 customers x 5 h
    a = _request(client, dispatcher, "SW-1", 5, 4, 8, 12)
    client.post(f"/reliability/planned-outages/{a['id']}/approve", headers=auth(planner),
                json={})
    r = client.get("/reliability/outage-budget?year=2026", headers=auth(planner))
    assert r.status_code == 200, r.text
    [district] = r.json()["districts"]
    assert district["district"] == "D-NS"
    assert district["used_customer_hours"] == 12.0
    assert district["live_line_customer_hours_avoided"] == 10.0
    assert district["live_line_share"] == pytest.approx(10 / 22, abs=1e-4)
    assert district["months"][4]["cumulative_customer_hours"] == 12.0  # May
    assert district["months"][3]["cumulative_customer_hours"] == 0.0
    csv_text = client.get("/reliability/outage-budget.csv?year=2026", headers=auth(planner),
                          ).text
    assert "2026-05" in csv_text and "累计已用时户数" in csv_text
    future = client.post("/reliability/live-line-jobs", headers=auth(dispatcher), json={
        "work": "带电作业", "switch_code": "SW-2", "done_on": "2026-12-31", "outage_hours": 5})
    assert future.status_code == 422


def test_the_recorded_outage_replaces_the_plan_in_the_budget_and_counts_in_the_indices(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ChinaClock
) -> None:
    dispatcher, planner = people["dispatcher"], people["planner"]
    a = _request(client, dispatcher, "SW-1", 5, 4, 8, 12)
    client.post(f"/reliability/planned-outages/{a['id']}/approve", headers=auth(planner),
                json={})
    server_clock.set_china(2026, 5, 4, 8)
    r = client.post(f"/reliability/planned-outages/{a['id']}/outage", headers=auth(dispatcher),
                    json={})
    assert r.status_code == 200, r.text
    outage_id = r.json()["outage_id"]
    outage = session.get(Outage, outage_id)
    assert outage is not None and outage.ref == f"PO-{a['id']}"
    assert outage.kind.value == "planned" and outage.transformer_codes == ["TX-R1"]
    # open: the budget still counts the plan (12); closed after 2 h: the outage's 3 x 2 = 6
    budget = client.get("/reliability/budgets/D-NS/2026", headers=auth(planner)).json()
    assert budget["used_customer_hours"] == 12.0
    server_clock.set_china(2026, 5, 4, 10)
    r = client.post(f"/reliability/outages/{outage_id}/close", headers=auth(dispatcher),
                    json={})
    assert r.status_code == 200, r.text
    budget = client.get("/reliability/budgets/D-NS/2026", headers=auth(planner)).json()
    assert budget["used_customer_hours"] == 6.0
    # recording it twice, or moving it after it began, is refused
    r = client.post(f"/reliability/planned-outages/{a['id']}/outage", headers=auth(dispatcher),
                    json={})
    assert r.status_code == 409 and r.json()["code"] == "reliability.planned_outage_begun"


# --- notices ----------------------------------------------------------------------------------


def _run_jobs(factory: sessionmaker[Session], settings: Settings) -> int:
    """A worker started afresh (a restart) running the notice and SMS jobs due now."""
    config = workers.config_of(settings, [], tag="test-notices")
    worker = workers.make_worker(factory, settings, config, {
        notices.JOB_KIND: notices.notice_job, sms.JOB_KIND: sms.send_job})
    return worker.run_until_idle()


def test_notices_go_out_once_days_before_and_corrections_follow_a_move(
    client: TestClient, session: Session, session_factory: sessionmaker[Session],
    settings: Settings, people: dict[str, str], server_clock: ChinaClock, sms_inbox: SmsInbox,
) -> None:
    dispatcher, planner = people["dispatcher"], people["planner"]
    a = _request(client, dispatcher, "SW-1", 5, 4, 8, 12)
    client.post(f"/reliability/planned-outages/{a['id']}/approve", headers=auth(planner),
                json={})
    _run_jobs(session_factory, settings)
    assert sms_inbox.sent == []  # due April 27th, 08:00 China time (7 days before)
    server_clock.set_china(2026, 4, 27, 9)
    _run_jobs(session_factory, settings)
    _run_jobs(session_factory, settings)  # a restart: nothing twice
    sent = sms_inbox.sent
    assert sorted(phone for phone, _ in sent) == [
        "13800138001", "13800138002", "13800138003"]
    assert "计划停电通知" in sent[0][1] and "2026-05-04 08:00至2026-05-04 12:00" in sent[0][1]
    # moved: those told get a correction with the new window, once
    r = client.put(f"/reliability/planned-outages/{a['id']}/window", headers=auth(dispatcher),
                   json={"start_at": _china(5, 6, 9), "end_at": _china(5, 6, 11)})
    assert r.status_code == 200, r.text
    assert r.json()["customer_hours"] == 6.0 and r.json()["window_version"] == 2
    _run_jobs(session_factory, settings)
    _run_jobs(session_factory, settings)
    corrections = sms_inbox.sent[3:]
    assert len(corrections) == 3
    assert all("时间变更" in text and "2026-05-06 09:00至2026-05-06 11:00" in text
               for _, text in corrections)
    listed = client.get(f"/reliability/planned-outages/{a['id']}/notices",
                        headers=auth(planner))
    assert listed.status_code == 200
    assert {n["kind"] for n in listed.json()} == {"notice", "moved"}
    assert "13800138001" not in listed.text and "*******8001" in listed.text
    # cancelled: a cancellation to each, once
    r = client.post(f"/reliability/planned-outages/{a['id']}/cancel", headers=auth(planner),
                    json={"reason": "天气原因"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    _run_jobs(session_factory, settings)
    assert len(sms_inbox.sent) == 9 and "取消" in sms_inbox.sent[-1][1]


def test_a_notice_of_an_old_window_never_goes_out(
    client: TestClient, session: Session, session_factory: sessionmaker[Session],
    settings: Settings, people: dict[str, str], server_clock: ChinaClock, sms_inbox: SmsInbox,
) -> None:
    dispatcher, planner = people["dispatcher"], people["planner"]
    a = _request(client, dispatcher, "SW-2", 5, 4, 8, 12)
    client.post(f"/reliability/planned-outages/{a['id']}/approve", headers=auth(planner),
                json={})
    # moved to June before the first notice went: only the new window's notice goes, on time
    r = client.put(f"/reliability/planned-outages/{a['id']}/window", headers=auth(planner),
                   json={"start_at": _china(6, 10, 8), "end_at": _china(6, 10, 10)})
    assert r.status_code == 200, r.text
    server_clock.set_china(2026, 4, 28, 9)  # the old notice's due time has passed
    _run_jobs(session_factory, settings)
    assert sms_inbox.sent == []
    server_clock.set_china(2026, 6, 3, 9)
    _run_jobs(session_factory, settings)
    sent = sms_inbox.sent
    assert len(sent) == 2 and all("2026-06-10 08:00" in text for _, text in sent)
    assert all("计划停电通知" in text for _, text in sent)
    states = session.scalars(select(OutageNotice.state).order_by(OutageNotice.id)).all()
    assert states == ["superseded", "superseded", "sent", "sent"]


def test_a_notice_worker_killed_after_its_commit_sends_nothing_twice(
    client: TestClient, session: Session, session_factory: sessionmaker[Session],
    settings: Settings, people: dict[str, str], server_clock: ChinaClock, sms_inbox: SmsInbox,
) -> None:
    dispatcher, planner = people["dispatcher"], people["planner"]
    a = _request(client, dispatcher, "SW-2", 4, 3, 8, 12)  # due at once (within 7 days)
    client.post(f"/reliability/planned-outages/{a['id']}/approve", headers=auth(planner),
                json={})
    # a worker claims both notice jobs, hands them to the outbox and dies before completing
    with session_factory.begin() as s:
        claimed = jobs.claim(s, queues=["default"], owner="gone-host/1/1", lease_s=30, limit=10)
    assert {c.kind for c in claimed} == {notices.JOB_KIND}
    assert len(claimed) == 2
    ctx = workers.JobContext.of(session_factory, settings, stopping=lambda: False)
    for job in claimed:
        assert notices.notice_job(ctx, job) is True
    server_clock.advance(seconds=120)  # its leases run out: another worker takes the jobs over
    _run_jobs(session_factory, settings)
    _run_jobs(session_factory, settings)
    assert sorted(p for p, _ in sms_inbox.sent) == ["13800138004", "13800138005"]
    assert datetime(2026, 4, 1, tzinfo=UTC) < server_clock.now()
