"""The webhook sender: one lane per subscription drains the outbox, signs, retries with backoff.

A pass (:func:`send_pending`, run by the ``webhooks.send`` job or ``fieldops webhooks send``)
finds the subscriptions with an event due and runs each as a *lane*: a thread holding the
subscription's lease (``webhooks.lane``, order 10's leases) that sends that subscriber's events
one at a time. Lanes of different subscriptions run side by side (up to
``FIELDOPS_WEBHOOK_LANES``), so one subscriber's failures or slowness never delay another's;
while any lane is busy the pass keeps looking for new events every ``FIELDOPS_WEBHOOK_POLL_S``.

Every attempt ends after ``FIELDOPS_WEBHOOK_ATTEMPT_DEADLINE_S`` whatever the receiver does
(the request runs under ``asyncio.timeout``; cancelling it closes the connection), and the lane
lease is renewed before each attempt for longer than that deadline, so a second worker never
sends to a subscriber while the first is still trying; a killed worker's lanes are taken over
(at once on its own host, else after the lease).

Within a lane an order's events go out in ``sequence`` order: an event waits while an earlier
event of its order is pending (retrying) for that subscriber; once the earlier one is dead the
later ones proceed. Each delivery's outcome is recorded in its own short transaction, with no
transaction open during the request: delivery is at least once (receivers deduplicate on
``X-Fieldops-Event-Id``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
from sqlalchemy import Select, and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from field_api.common import clock as server_clock
from field_api.config import Settings, WebhookSettings, get_settings, settings_of
from field_api.db import READ_OPTIONS
from field_api.leases import service as leases
from field_api.tracking import rules, targets
from field_api.tracking.models import TrackingToken, WebhookDelivery, WebhookSubscription
from field_api.tracking.service import forget_expired_secrets, has_expired_secrets, link_expired
from field_api.work_orders.models import WorkOrder

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]  # a time source; the server clock by default
LANE_KIND = "webhooks.lane"
ANSWER_BYTES = 1024  # of a failed answer's body kept as its error
RENEW_MARGIN_S = 5.0  # a lane's lease outlasts its next attempt by at least this much


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    url: str
    secret: str
    old_secret: str | None
    event_type: str
    event_id: str
    body: bytes


@dataclass
class SendReport:
    """What one pass over the outbox did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def attempted(self) -> int:
        """Requests sent (or tried) in this pass."""
        return self.delivered + self.failed + self.dead

    def count(self, outcome: rules.DeliveryStatus) -> None:
        """Add one attempt's outcome (lanes report from their own threads)."""
        with self._lock:
            if outcome is rules.DeliveryStatus.delivered:
                self.delivered += 1
            elif outcome is rules.DeliveryStatus.dead:
                self.dead += 1
            else:
                self.failed += 1


@dataclass(frozen=True)
class SendOptions:
    """How a pass sends (from ``FIELDOPS_WEBHOOK_*`` by default: :meth:`of`)."""

    clock: Clock = server_clock.now
    policy: rules.RetryPolicy = field(default_factory=rules.RetryPolicy)
    deadline_s: float = 10.0
    lane_lease_s: float = 50.0
    lanes: int = 8
    poll_s: float = 0.2
    targets_policy: targets.TargetPolicy | None = None
    max_deliveries: int | None = None
    stopping: Callable[[], bool] = lambda: False

    @classmethod
    def of(cls, settings: Settings, **overrides: Any) -> SendOptions:
        """The options these settings give (keyword arguments override them)."""
        cfg: WebhookSettings = settings.webhooks
        values: dict[str, Any] = {
            "policy": rules.RetryPolicy(cfg.retry_base_s, cfg.retry_max_s, cfg.max_attempts),
            "deadline_s": cfg.attempt_deadline_s,
            "lane_lease_s": cfg.lane_lease_s,
            "lanes": cfg.lanes,
            "poll_s": cfg.poll_s,
            "targets_policy": default_target_policy(settings),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def stopped(self, report: SendReport) -> bool:
        """Whether no further attempt may start."""
        if self.stopping():
            return True
        return self.max_deliveries is not None and report.attempted >= self.max_deliveries


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


def _sendable(now: datetime) -> Select[WebhookDelivery]:
    """Outbox rows due now that no earlier pending event of their order holds back."""
    earlier = aliased(WebhookDelivery)
    held_back = exists().where(
        and_(
            earlier.subscription_id == WebhookDelivery.subscription_id,
            earlier.order_id == WebhookDelivery.order_id,
            earlier.status == rules.DeliveryStatus.pending.value,
            earlier.sequence < WebhookDelivery.sequence,
        )
    )
    return select(WebhookDelivery).where(
        WebhookDelivery.status == rules.DeliveryStatus.pending.value,
        WebhookDelivery.next_attempt_at <= now,
        ~held_back,
    )


def due_lanes(session: Session, now: datetime) -> list[int]:
    """The subscriptions with an event to send now, the longest waiting first."""
    due = _sendable(now).subquery()
    query = (
        select(due.c.subscription_id)
        .group_by(due.c.subscription_id)
        .order_by(func.min(due.c.next_attempt_at), due.c.subscription_id)
    )
    return [int(s) for s in session.execute(query).scalars()]


def _drop_lane(session: Session, sub_id: int) -> None:
    """A deactivated (or removed) subscriber's pending events are dead."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == sub_id,
            WebhookDelivery.status == rules.DeliveryStatus.pending.value,
        )
        .values(status=rules.DeliveryStatus.dead.value, last_error="subscription deactivated")
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class _Outcome:
    """One attempt's result, recorded with the lane's next step."""

    job: _Job
    status_code: int | None
    error: str | None
    at: datetime


def _take_next(
    session: Session, sub_id: int, owner: str, options: SendOptions, now: datetime, renew: bool
) -> _Job | None:
    """Take the lane's next event (renewing its lease first when ``renew``); None when the lane
    is done (nothing due, the subscriber deactivated, or the lease lost)."""
    if renew and not leases.claim(
        session, LANE_KIND, str(sub_id), ttl_s=options.lane_lease_s, owner=owner
    ):
        return None
    sub = session.get(WebhookSubscription, sub_id)
    if sub is None or not sub.active:
        _drop_lane(session, sub_id)
        return None
    query = (
        _sendable(now)
        .where(WebhookDelivery.subscription_id == sub_id)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
    )
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        return None
    row.locked_until = now + timedelta(seconds=options.lane_lease_s)
    keep_old = not rules.old_secret_expired(sub.previous_secret_expires_at, now)
    payload = with_tracking_path(session, row.payload, include=sub.include_tracking_path)
    return _Job(
        delivery_id=row.id,
        url=sub.url,
        secret=sub.secret,
        old_secret=sub.previous_secret if keep_old else None,
        event_type=row.event_type,
        event_id=row.event_id,
        body=encode(payload),
    )


def _step(
    factory: sessionmaker[Session],
    lane: _Lane,
    options: SendOptions,
    done: _Outcome | None,
    report: SendReport,
) -> _Job | None:
    """Record the last attempt (if any) and take the lane's next event, in one transaction."""
    renew = lane.renew_due(options)
    with factory.begin() as session:
        if done is not None:
            report.count(_record(session, done, options.policy))
        if options.stopped(report):
            return None
        job = _take_next(session, lane.sub_id, lane.owner, options, options.clock(), renew)
    if renew:
        lane.renewed_at = time.monotonic()
    return job


@dataclass
class _Lane:
    """A lane being drained: its lease is renewed only when what is left of it might not
    outlast the next attempt (with a margin), not before every event."""

    sub_id: int
    owner: str
    renewed_at: float | None = None  # time.monotonic() of the last renewal

    def renew_due(self, options: SendOptions) -> bool:
        if self.renewed_at is None:
            return True
        left = options.lane_lease_s - (time.monotonic() - self.renewed_at)
        return left < options.deadline_s + RENEW_MARGIN_S


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every lane (building one costs tens of milliseconds)."""
    return ssl.create_default_context()


_warmed: set[int] = set()


def warm(factory: sessionmaker[Session], options: SendOptions) -> None:
    """Do once per process what a lane's first event would otherwise pay for under its
    deadline: load the async HTTP stack and its event-loop backend, build the TLS context and
    compile the lane's statements (a lane step on no subscription, rolled back). Done by the
    first pass of each process, usually with nothing to send."""
    if id(factory) in _warmed:
        return
    for name in ("h11", "httpcore", "anyio", "anyio._backends._asyncio", "encodings.idna"):
        importlib.import_module(name)
    _tls()
    with factory() as session:
        owner = leases.owner_id("webhooks-warm-up")
        _take_next(session, 0, owner, options, options.clock(), renew=True)
        session.get(WebhookDelivery, 0)
        leases.release(session, LANE_KIND, "0", owner=owner)
        session.rollback()
    _warmed.add(id(factory))


def _client(deadline_s: float) -> httpx.AsyncClient:
    # No proxies from the environment: the sender connects to the address it has checked.
    return httpx.AsyncClient(
        timeout=deadline_s, trust_env=False, follow_redirects=False, verify=_tls()
    )


async def _exchange(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    extensions: dict[str, str],
    deadline_s: float,
) -> tuple[int, bytes]:
    """POST under one overall deadline; cancelling on expiry closes the connection."""
    async with asyncio.timeout(deadline_s):
        request = client.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            answer = b""
            async for chunk in response.aiter_raw():
                answer += chunk
                if len(answer) >= ANSWER_BYTES:
                    break
        finally:
            await response.aclose()
        return response.status_code, answer[:ANSWER_BYTES]


async def _post(
    client: httpx.AsyncClient,
    job: _Job,
    now: datetime,
    policy: targets.TargetPolicy,
    deadline_s: float,
) -> tuple[int | None, str | None]:
    # Resolve once, check every address, connect to the checked one (no second lookup a DNS
    # rebinding could answer differently); Host and TLS name stay the URL's own.
    try:
        target = targets.check(job.url, policy)
    except targets.TargetRefused as exc:
        return None, f"target refused: {exc}"[:500]
    also = (job.old_secret,) if job.old_secret else ()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Host": target.host_header,
        rules.EVENT_HEADER: job.event_type,
        rules.EVENT_ID_HEADER: job.event_id,
        rules.SIGNATURE_HEADER: rules.sign(job.secret, int(now.timestamp()), job.body, also=also),
    }
    extensions: dict[str, str] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
        # The pool keys connections by address: never reuse a TLS session made for another name.
        headers["Connection"] = "close"
    url = target.pinned_url(target.addresses[0])
    try:
        code, answer = await _exchange(client, url, job.body, headers, extensions, deadline_s)
    except TimeoutError:
        return None, f"no complete answer within the {deadline_s:g} s deadline"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if rules.is_success(code):
        return code, None
    return code, f"HTTP {code}: {answer[:200].decode(errors='replace')}"


def _record(session: Session, done: _Outcome, policy: rules.RetryPolicy) -> rules.DeliveryStatus:
    row = session.get(WebhookDelivery, done.job.delivery_id)
    if row is None:  # removed while we were sending: nothing left to record
        return rules.DeliveryStatus.dead
    row.attempts += 1
    row.locked_until = None
    row.last_status_code = done.status_code
    row.last_error = done.error
    if done.error is None:
        row.status = rules.DeliveryStatus.delivered.value
        row.delivered_at = done.at
    elif policy.gives_up(row.attempts):
        row.status = rules.DeliveryStatus.dead.value
    else:
        row.next_attempt_at = done.at + timedelta(seconds=policy.delay_s(row.attempts))
    return rules.DeliveryStatus(row.status)


def _release(factory: sessionmaker[Session], sub_id: int, owner: str) -> None:
    try:
        with factory.begin() as session:
            leases.release(session, LANE_KIND, str(sub_id), owner=owner)
    except Exception:  # the lease expires on its own
        log.exception("releasing the webhook lane of subscription %s failed", sub_id)


async def _drain(
    factory: sessionmaker[Session],
    sub_id: int,
    *,
    owner: str,
    options: SendOptions,
    report: SendReport,
) -> None:
    where = options.targets_policy or default_target_policy()
    client = _client(options.deadline_s)
    done: _Outcome | None = None
    lane = _Lane(sub_id, owner)
    try:
        while True:
            job = _step(factory, lane, options, done, report)
            if job is None:
                break
            code, error = await _post(client, job, options.clock(), where, options.deadline_s)
            done = _Outcome(job, code, error, options.clock())
            if code is None:
                # No answer (cut off at the deadline, refused): the next one gets a fresh pool.
                await client.aclose()
                client = _client(options.deadline_s)
    finally:
        await client.aclose()


def run_lane(
    factory: sessionmaker[Session],
    sub_id: int,
    *,
    owner: str,
    options: SendOptions,
    report: SendReport,
) -> None:
    """Send one subscriber's due events one at a time (one event loop, one connection pool),
    then release its lane."""
    try:
        asyncio.run(_drain(factory, sub_id, owner=owner, options=options, report=report))
    except Exception:  # a lost database: the events stay pending for the next pass
        log.exception("the webhook lane of subscription %s failed", sub_id)
    finally:
        _release(factory, sub_id, owner)


def _take_lanes(
    factory: sessionmaker[Session], owner: str, options: SendOptions, busy: set[int], room: int
) -> list[int]:
    """Lease the lanes with events due now that no lane of this pass runs (at most ``room``);
    lanes another worker holds are left to it. Looking takes no write lock."""
    if room <= 0:
        return []
    with factory() as session:
        session.connection(execution_options=READ_OPTIONS)
        wanted = [s for s in due_lanes(session, options.clock()) if s not in busy]
    if not wanted:
        return []
    with factory.begin() as session:
        taken = leases.claim_many(
            session,
            LANE_KIND,
            [str(s) for s in wanted],
            ttl_s=options.lane_lease_s,
            owner=owner,
            limit=room,
        )
    return [int(k) for k in taken]


def send_pending(
    factory: sessionmaker[Session], options: SendOptions | None = None
) -> SendReport:
    """One pass: run a lane for each subscription with events due, starting lanes for new
    events while any lane is busy, until every lane is idle (or ``options.stopping``)."""
    options = options or SendOptions.of(get_settings())
    with factory() as reader:
        reader.connection(execution_options=READ_OPTIONS)
        stale = has_expired_secrets(reader)
    if stale:
        with factory.begin() as session:
            forget_expired_secrets(session)
    warm(factory, options)
    report = SendReport()
    owner = leases.owner_id(f"webhooks-{secrets.token_hex(4)}")
    running: dict[int, threading.Thread] = {}
    while True:
        running = {k: t for k, t in running.items() if t.is_alive()}
        started = 0
        if not options.stopped(report):
            room = options.lanes - len(running)
            for sub_id in _take_lanes(factory, owner, options, set(running), room):
                thread = threading.Thread(
                    target=run_lane,
                    args=(factory, sub_id),
                    kwargs={"owner": owner, "options": options, "report": report},
                    name=f"fieldops-webhook-lane-{sub_id}",
                    daemon=True,
                )
                thread.start()
                running[sub_id] = thread
                started += 1
        if not running:
            return report
        if started == 0:  # wait for a lane to finish or the next look for new events
            next(iter(running.values())).join(options.poll_s)


def run_sender(
    factory: sessionmaker[Session],
    options: SendOptions,
    *,
    stop: threading.Event,
    interval_s: float = 5.0,
) -> SendReport:
    """Keep passing over the outbox until ``stop`` is set; waits ``interval_s`` when idle."""
    total = SendReport()
    while not stop.is_set():
        report = send_pending(factory, options)
        total.delivered += report.delivered
        total.failed += report.failed
        total.dead += report.dead
        if report.attempted == 0:
            stop.wait(interval_s)
    return total
