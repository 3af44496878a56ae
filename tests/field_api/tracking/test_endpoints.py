"""The public tracking endpoint and page, and webhook subscriptions through HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit.models import AuditEvent
from field_api.common.actors import Role
from field_api.common.calendar import PACKAGE_YEARS
from field_api.config import Settings
from field_api.main import create_app
from field_api.tracking import service as tracking
from field_api.work_orders import service as orders
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_order, make_user
from tests.clocks import ChinaClock

from .conftest import RecordingNotifier


def _order_with_token(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> tuple[str, str]:
    crew = make_crew(session)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew)
    order.accepted_at = clock.now()
    session.commit()
    r = client.get(f"/work-orders/{order.id}/tracking", headers=auth(crew_token))
    assert r.status_code == 200, r.text
    assert r.json()["path"] == f"/t/{r.json()['token']}"
    return r.json()["token"], crew_token


def test_public_tracking_json_needs_no_auth_and_masks_personal_data(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    token, _ = _order_with_token(client, session, settings, clock)
    r = client.get(f"/track/{token}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_name"] == "张*"
    assert body["customer_phone"] == "*******8000"
    assert "13800138000" not in r.text
    assert body["stage"] == "accepted"
    assert body["deadline"]["due_on"] == "2025-10-13"
    assert body["deadline"]["provisional"] is False
    missing = client.get("/track/" + "A" * 32)
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFound"


def test_mobile_page_renders_progress_and_is_private(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    token, _ = _order_with_token(client, session, settings, clock)
    r = client.get(f"/t/{token}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "张*" in r.text
    assert "张三" not in r.text
    assert "2025-10-13" in r.text
    assert "已受理" in r.text
    assert "暂定" not in r.text
    assert client.get("/t/" + "B" * 32).status_code == 404


def test_mobile_page_marks_a_provisional_deadline(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    clock.set_china(PACKAGE_YEARS[1], 12, 28)
    token, _ = _order_with_token(client, session, settings, clock)
    r = client.get(f"/t/{token}")
    assert "暂定" in r.text
    assert str(PACKAGE_YEARS[1] + 1) in r.text
    assert client.get(f"/track/{token}").json()["deadline"]["missing_years"] == [
        PACKAGE_YEARS[1] + 1
    ]


def test_webhook_subscriptions_are_managed_by_the_service_role(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, service_token = make_user(session, settings, role=Role.service)
    _, planner_token = make_user(session, settings, role=Role.planner)
    session.commit()
    body = {"name": "crm", "url": "https://crm.example.test/hook", "events": ["stage_changed"]}
    assert (
        client.post("/webhooks/subscriptions", json=body, headers=auth(planner_token)).status_code
        == 403
    )
    created = client.post("/webhooks/subscriptions", json=body, headers=auth(service_token))
    assert created.status_code == 201, created.text
    assert len(created.json()["secret"]) == 64
    listed = client.get("/webhooks/subscriptions", headers=auth(service_token)).json()
    assert all("secret" not in s for s in listed)
    bad_event = client.post(
        "/webhooks/subscriptions", json={**body, "events": ["nope"]}, headers=auth(service_token)
    )
    assert bad_event.status_code == 422
    bad_url = client.post(
        "/webhooks/subscriptions",
        json={**body, "url": "ftp://x.example"},
        headers=auth(service_token),
    )
    assert bad_url.status_code == 422
    assert bad_url.json()["error"] == "ValidationFailed"
    sub_id = created.json()["id"]
    url = f"/webhooks/subscriptions/{sub_id}/deactivate"
    assert client.post(url, headers=auth(service_token)).status_code == 200
    assert client.post(url, headers=auth(service_token)).status_code == 409
    deliveries = client.get(
        "/webhooks/deliveries", params={"status": "pending"}, headers=auth(service_token)
    )
    assert deliveries.status_code == 200


def test_strict_calendar_without_the_year_still_shows_progress(
    session: Session,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    strict_calendar = settings.calendar.model_copy(update={"strict": True})
    strict_settings = settings.model_copy(update={"calendar": strict_calendar})
    strict = create_app(strict_settings, session_factory=session_factory)
    with TestClient(strict, raise_server_exceptions=False) as client:
        clock.set_china(PACKAGE_YEARS[1], 12, 28)
        order = make_order(session)
        order.accepted_at = clock.now()
        token = tracking.token_for(session, order).token
        session.commit()
        r = client.get(f"/track/{token}")
        assert r.status_code == 200, r.text
        assert r.json()["deadline"] is None
        assert r.json()["stage"] == "accepted"
        assert client.get(f"/t/{token}").status_code == 200


def test_tracking_json_is_never_stored_by_caches(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    token, _ = _order_with_token(client, session, settings, clock)
    for path in (f"/track/{token}", f"/t/{token}", "/track/" + "A" * 32, "/t/" + "A" * 32):
        r = client.get(path)
        assert r.headers["Cache-Control"] == "no-store", path
        assert r.headers["Referrer-Policy"] == "no-referrer", path


def test_a_tracking_link_expires_after_the_order_closes_or_is_cancelled(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: ChinaClock,
    sms: RecordingNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIELDOPS_TRACKING_LINK_DAYS_AFTER_CLOSE", "30")
    token, _ = _order_with_token(client, session, settings, clock)
    order = tracking.order_by_token(session, token)
    orders.transition(session, order, Stage.cancelled, actor=None, reason="customer withdrew")
    session.commit()
    clock.advance(days=29)
    assert client.get(f"/track/{token}").status_code == 200  # still shows the cancellation
    clock.advance(days=1, seconds=1)
    gone = client.get(f"/track/{token}")
    assert gone.status_code == 404
    assert gone.json()["code"] == "tracking.link_expired"
    assert client.get(f"/t/{token}").status_code == 404


def test_service_revokes_a_tracking_link_audited(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    token, crew_token = _order_with_token(client, session, settings, clock)
    order_id = tracking.order_by_token(session, token).id
    _, service_token = make_user(session, settings, role=Role.service)
    session.commit()
    url = f"/work-orders/{order_id}/tracking/revoke"
    assert client.post(url, headers=auth(crew_token)).status_code == 403
    r = client.post(url, headers=auth(service_token))
    assert r.status_code == 200, r.text
    assert r.json() == {"order_id": order_id, "revoked": True}
    assert client.get(f"/track/{token}").status_code == 404
    assert client.get(f"/t/{token}").status_code == 404
    events = session.execute(
        select(AuditEvent.action, AuditEvent.entity_type).where(
            AuditEvent.action == "tracking_token.revoke"
        )
    ).all()
    assert [tuple(e) for e in events] == [("tracking_token.revoke", "tracking_tokens")]
    # a new link can be issued; it is a different token
    fresh = client.get(f"/work-orders/{order_id}/tracking", headers=auth(crew_token)).json()
    assert fresh["token"] != token
    assert client.get(f"/track/{fresh['token']}").status_code == 200


def test_the_apps_own_settings_reach_the_listeners_and_the_link_expiry(
    settings: Settings,
    session: Session,
    session_factory: sessionmaker[Session],
    clock: ChinaClock,
    sms: RecordingNotifier,
) -> None:
    """Settings are injected, not looked up: an app built with its own public address and link
    lifetime sends that address in the cancellation SMS (a transition listener) and expires the
    link after its own 2 days, while the process-wide settings say 127.0.0.1 and 30 days."""
    own = settings.model_copy(
        update={
            "public_base_url": "https://injected.example",
            "tracking": settings.tracking.model_copy(update={"link_days_after_close": 2}),
        }
    )
    with TestClient(create_app(own, session_factory=session_factory)) as client:
        token, _ = _order_with_token(client, session, own, clock)
        _, admin = make_user(session, own, role=Role.admin)
        session.commit()
        order = tracking.order_by_token(session, token)
        r = client.post(
            f"/work-orders/{order.id}/transitions",
            json={"to": "cancelled", "reason": "customer withdrew"},
            headers=auth(admin),
        )
        assert r.status_code == 201, r.text
        assert [text for _, text in sms.sent if f"https://injected.example/t/{token}" in text]
        clock.advance(days=2, seconds=1)
        gone = client.get(f"/track/{token}")
        assert gone.status_code == 404
        assert gone.json()["code"] == "tracking.link_expired"


def test_admin_rotates_a_secret_and_resends_a_dead_letter(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    _, admin_token = make_user(session, settings, role=Role.admin)
    _, service_token = make_user(session, settings, role=Role.service)
    order = make_order(session)
    sub = tracking.create_subscription(
        session, name="crm", url="https://crm.example.test/hook",
        events=[tracking.rules.EventType.stage_changed], actor=None, allow_http=False,
    )  # fmt: skip
    (row,) = tracking.enqueue(
        session, tracking.rules.EventType.stage_changed, {}, order_id=order.id
    )
    row.status, row.attempts = "dead", 12
    session.commit()
    old_secret = sub.secret

    url = f"/webhooks/subscriptions/{sub.id}/rotate-secret"
    assert client.post(url, headers=auth(service_token)).status_code == 403
    rotated = client.post(url, headers=auth(admin_token))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] not in (old_secret, "")
    until = rotated.json()["previous_secret_expires_at"]
    assert until is not None and until.startswith((clock.now() + timedelta(days=1)).date().isoformat())
    listed = client.get("/webhooks/subscriptions", headers=auth(admin_token)).json()
    assert all("secret" not in s for s in listed)
    missing = client.post("/webhooks/subscriptions/999999/rotate-secret", headers=auth(admin_token))
    assert (missing.status_code, missing.json()["code"]) == (404, "webhook.not_found")

    dead = client.get(
        "/webhooks/deliveries", params={"status": "dead"}, headers=auth(admin_token)
    )
    assert [d["id"] for d in dead.json()] == [row.id] and dead.headers["X-Total-Count"] == "1"
    resend = f"/webhooks/deliveries/{row.id}/resend"
    assert client.post(resend, headers=auth(service_token)).status_code == 403
    again = client.post(resend, headers=auth(admin_token))
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["status"], body["attempts"], body["event_id"]) == ("pending", 0, row.event_id)
    assert body["sequence"] == 1
    twice = client.post(resend, headers=auth(admin_token))
    assert (twice.status_code, twice.json()["code"]) == (409, "webhook.delivery_not_dead")
    unknown = client.post("/webhooks/deliveries/999999/resend", headers=auth(admin_token))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "webhook.delivery_not_found")
    actions = session.execute(
        select(AuditEvent.action).where(AuditEvent.action.like("webhook_%"))
    ).scalars()
    assert {"webhook_subscription.rotate_secret", "webhook_delivery.resend"} <= set(actions)
