"""The webhook sender: drains the outbox, signs each request, retries with backoff.

Each delivery is claimed in its own short transaction (a lease: ``locked_until``), sent with
no transaction open, and its outcome recorded in another, so a sender stopped at any moment
loses nothing: an unfinished claim expires and the row is sent again, with the same event id
(delivery is at least once; receivers deduplicate on ``X-Fieldops-Event-Id``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.common import clock as server_clock
from field_api.config import Settings, get_settings, settings_of
from field_api.tracking import rules, targets
from field_api.tracking.models import TrackingToken, WebhookDelivery, WebhookSubscription
from field_api.tracking.service import link_expired
from field_api.work_orders.models import WorkOrder

Clock = Callable[[], datetime]  # a time source; the server clock by default


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    url: str
    secret: str
    event_type: str
    event_id: str
    body: bytes


@dataclass
class SendReport:
    """What one pass over the outbox did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        """Requests sent (or tried) in this pass."""
        return self.delivered + self.failed + self.dead


def default_target_policy(settings: Settings | None = None) -> targets.TargetPolicy:
    """Where webhooks may go under these settings: https only and never loopback in
    production; loopback allowed elsewhere unless FIELDOPS_WEBHOOK_ALLOW_LOOPBACK=false."""
    settings = settings or get_settings()
    return targets.TargetPolicy(
        https_only=settings.is_production, allow_loopback=settings.webhook_loopback_allowed
    )


def encode(payload: dict[str, object]) -> bytes:
    """The exact bytes sent and signed for a payload."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def with_tracking_path(
    session: Session, payload: dict[str, Any], *, include: bool = True
) -> dict[str, Any]:
    """The payload as sent.

    With ``include`` (the subscription's ``include_tracking_path``), the order's tracking path
    is filled in from the token's own table (None when the order has no live link: none yet,
    revoked, or expired after closing); without it the field is left out altogether.
    """
    order = payload.get("order")
    if not isinstance(order, dict) or "tracking_path" not in order:
        return payload
    if not include:
        return {**payload, "order": {k: v for k, v in order.items() if k != "tracking_path"}}
    row = session.execute(
        select(TrackingToken.token, WorkOrder)
        .join(WorkOrder, WorkOrder.id == TrackingToken.order_id)
        .where(TrackingToken.order_id == order.get("id"))
    ).first()
    keep = settings_of(session).tracking.link_days_after_close
    live = row is not None and not link_expired(row[1], days=keep)
    path = rules.tracking_path(row[0]) if row is not None and live else None
    return {**payload, "order": {**order, "tracking_path": path}}


def _claim(factory: sessionmaker[Session], *, now: datetime, lease_s: float) -> _Job | None:
    with factory.begin() as session:
        query = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == rules.DeliveryStatus.pending.value,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Parallel senders take different rows instead of queueing on one.
            query = query.with_for_update(skip_locked=True)
        while True:
            row = session.execute(query).scalar_one_or_none()
            if row is None:
                return None
            sub = session.get(WebhookSubscription, row.subscription_id)
            if sub is None or not sub.active:
                row.status = rules.DeliveryStatus.dead.value
                row.last_error = "subscription deactivated"
                session.flush()
                continue
            row.locked_until = now + timedelta(seconds=lease_s)
            return _Job(
                delivery_id=row.id,
                url=sub.url,
                secret=sub.secret,
                event_type=row.event_type,
                event_id=row.event_id,
                body=encode(
                    with_tracking_path(session, row.payload, include=sub.include_tracking_path)
                ),
            )


def _post(
    client: httpx.Client, job: _Job, now: datetime, policy: targets.TargetPolicy
) -> tuple[int | None, str | None]:
    # Resolve once, check every address, connect to the checked one (no second lookup a DNS
    # rebinding could answer differently); Host and TLS name stay the URL's own.
    try:
        target = targets.check(job.url, policy)
    except targets.TargetRefused as exc:
        return None, f"target refused: {exc}"[:500]
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Host": target.host_header,
        rules.EVENT_HEADER: job.event_type,
        rules.EVENT_ID_HEADER: job.event_id,
        rules.SIGNATURE_HEADER: rules.sign(job.secret, int(now.timestamp()), job.body),
    }
    extensions: dict[str, str] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
        # The pool keys connections by address: never reuse a TLS session made for another name.
        headers["Connection"] = "close"
    try:
        response = client.post(
            target.pinned_url(target.addresses[0]),
            content=job.body,
            headers=headers,
            extensions=extensions,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if rules.is_success(response.status_code):
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def _record(
    factory: sessionmaker[Session],
    job: _Job,
    *,
    status_code: int | None,
    error: str | None,
    now: datetime,
    policy: rules.RetryPolicy,
) -> rules.DeliveryStatus:
    with factory.begin() as session:
        row = session.get(WebhookDelivery, job.delivery_id)
        if row is None:  # removed while we were sending: nothing left to record
            return rules.DeliveryStatus.dead
        row.attempts += 1
        row.locked_until = None
        row.last_status_code = status_code
        row.last_error = error
        if error is None:
            row.status = rules.DeliveryStatus.delivered.value
            row.delivered_at = now
        elif policy.gives_up(row.attempts):
            row.status = rules.DeliveryStatus.dead.value
        else:
            row.next_attempt_at = now + timedelta(seconds=policy.delay_s(row.attempts))
        return rules.DeliveryStatus(row.status)


def send_pending(
    factory: sessionmaker[Session],
    *,
    client: httpx.Client,
    clock: Clock = server_clock.now,
    policy: rules.RetryPolicy | None = None,
    lease_s: float = 60.0,
    max_deliveries: int | None = None,
    stop: threading.Event | None = None,
    targets_policy: targets.TargetPolicy | None = None,
) -> SendReport:
    """Send every outbox row due now, one at a time, until none is due or ``stop`` is set.

    Each target is checked again at delivery (``targets_policy``, by default from the service
    settings: https only and no loopback in production); a refused target is a failed attempt,
    retried with backoff, and nothing is sent to it.
    """
    policy = policy or rules.RetryPolicy()
    targets_policy = targets_policy or default_target_policy()
    report = SendReport()
    while (stop is None or not stop.is_set()) and (
        max_deliveries is None or report.attempted < max_deliveries
    ):
        job = _claim(factory, now=clock(), lease_s=lease_s)
        if job is None:
            break
        status_code, error = _post(client, job, clock(), targets_policy)
        outcome = _record(
            factory, job, status_code=status_code, error=error, now=clock(), policy=policy
        )
        if outcome is rules.DeliveryStatus.delivered:
            report.delivered += 1
        elif outcome is rules.DeliveryStatus.dead:
            report.dead += 1
        else:
            report.failed += 1
    return report


def run_sender(
    factory: sessionmaker[Session],
    *,
    client: httpx.Client,
    stop: threading.Event,
    interval_s: float = 5.0,
    clock: Clock = server_clock.now,
    policy: rules.RetryPolicy | None = None,
    targets_policy: targets.TargetPolicy | None = None,
) -> SendReport:
    """Keep draining the outbox until ``stop`` is set; waits ``interval_s`` when idle."""
    total = SendReport()
    while not stop.is_set():
        report = send_pending(
            factory, client=client, clock=clock, policy=policy, stop=stop,
            targets_policy=targets_policy,
        )
        total.delivered += report.delivered
        total.failed += report.failed
        total.dead += report.dead
        if report.attempted == 0:
            stop.wait(interval_s)
    return total
