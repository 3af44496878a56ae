"""HTTP endpoints of customer progress: the public tracking page and webhook subscribers."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from field_api.common import clock, i18n
from field_api.common.actors import Principal, Role
from field_api.common.calendar import calendar_for
from field_api.deps import AppSettings, CurrentUser, DbSession, require_roles
from field_api.errors import NotFound
from field_api.language import language_of
from field_api.paging import Page
from field_api.tracking import service
from field_api.tracking.rules import DeliveryStatus, EventType
from field_api.tracking.schemas import (
    DeliveryRead,
    ProgressRead,
    SecretRotated,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
    TrackingLinkRead,
    TrackingRevoked,
    WebhookEvent,
)
from field_api.types import HTML_NOT_FOUND, Code64Path, IdPath, Text
from field_api.work_orders.rules import Stage

router = APIRouter(tags=["tracking"])

Service = Annotated[Principal, Depends(require_roles(Role.service, Role.admin))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]
# The token sits in the URL: keep it out of caches, referrers and search engines.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
NOT_FOUND_PAGE = (
    '<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
    '<link rel="icon" href="/app/static/icons/icon.svg" type="image/svg+xml">'
    "</head><body><p>{text}</p></body></html>"
)


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=select_autoescape(["html"]),
    )
    env.globals["local"] = clock.to_china  # the same China time as the pages and CSV
    return env


@router.get("/work-orders/{order_id}/tracking")
def get_tracking_link(
    order_id: IdPath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    request: Request,
) -> TrackingLinkRead:
    """The order's public tracking link (created on first use)."""
    token = service.token_for_actor(session, request.app.state.session_factory, order_id, user)
    return TrackingLinkRead(
        order_id=order_id,
        token=token,
        path=service.tracking_path(token),
        url=service.public_url(token, settings),
    )


@router.get("/track/{token}")
def get_progress(
    token: Code64Path, session: DbSession, settings: AppSettings, response: Response
) -> ProgressRead:
    """Public: an order's progress by its tracking token (personal data masked; no-store)."""
    try:
        view = service.progress(session, token, calendar=calendar_for(settings))
    except NotFound as exc:
        exc.headers = {**(exc.headers or {}), **PRIVATE_HEADERS}
        raise
    response.headers.update(PRIVATE_HEADERS)
    return ProgressRead.of(view)


@router.post("/work-orders/{order_id}/tracking/revoke")
def revoke_tracking_link(order_id: IdPath, session: DbSession, user: Service) -> TrackingRevoked:
    """Revoke the order's tracking link at once (service, admin); a new one can be issued."""
    revoked = service.revoke_link_for_actor(session, order_id, actor=user)
    return TrackingRevoked(order_id=order_id, revoked=revoked)


def _page_language(request: Request, lang: str | None) -> i18n.Lang:
    """The page's language: its switch (``?lang=``), else the request's (cookie, header)."""
    return i18n.normalise(lang) if lang else language_of(request)


def _not_found_page(lang: i18n.Lang) -> str:
    m = i18n.messages(lang)
    return NOT_FOUND_PAGE.format(
        lang=lang, title=escape(m["track.not_found_title"]), text=escape(m["track.not_found"])
    )


# A person may open any link: every token the page cannot know (too long, odd characters) is
# the same "not found" page, never a JSON error a browser shows as code.
_ANY_TOKEN = Annotated[str, PathParam(min_length=1)]  # the server bounds a request line


@router.get("/t/{token}", response_class=HTMLResponse, responses=HTML_NOT_FOUND)
def progress_page(
    token: _ANY_TOKEN,
    session: DbSession,
    settings: AppSettings,
    request: Request,
    lang: Annotated[Text | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    """Public: the mobile progress page of an order, in zh-CN or English (``lang``, the
    ``fo_lang`` cookie or Accept-Language, as every page)."""
    language = _page_language(request, lang)
    if len(token) > 64 or not token.isprintable():
        return HTMLResponse(_not_found_page(language), status_code=404, headers=PRIVATE_HEADERS)
    try:
        view = service.progress(session, token, calendar=calendar_for(settings))
    except NotFound:
        return HTMLResponse(_not_found_page(language), status_code=404, headers=PRIVATE_HEADERS)
    m = i18n.messages(language)

    def t(key: str, **values: object) -> str:
        return m[key].format(**values) if values else m[key]

    def stage_label(stage: Stage, label: str) -> str:
        # The customer's own wording in Chinese; the catalogue's stage name in English.
        return label if language == i18n.DEFAULT_LANG else m.get(f"stage.{stage.value}", label)

    html = (
        _templates()
        .get_template("tracking.html")
        .render(
            view=view,
            lang=language,
            other_lang=i18n.other(language),
            m=m,
            t=t,
            stage_label=stage_label,
        )
    )
    return HTMLResponse(html, headers=PRIVATE_HEADERS)


@router.post("/webhooks/subscriptions", status_code=status.HTTP_201_CREATED)
def create_subscription(
    body: SubscriptionCreate, session: DbSession, user: Service, settings: AppSettings
) -> SubscriptionCreated:
    """Register a webhook subscriber; the response shows its signing secret once. What it
    then receives, and how to check the signature, is in this document's `webhooks` section
    (one entry per event type)."""
    sub = service.create_subscription(
        session,
        name=body.name,
        url=body.url,
        events=body.events,
        actor=user,
        allow_http=not settings.is_production,
        allow_loopback=settings.webhook_loopback_allowed,
        include_tracking_path=body.include_tracking_path,
    )
    return SubscriptionCreated.created(sub)


@router.get("/webhooks/subscriptions")
def list_subscriptions(page: Page, session: DbSession, _: Service) -> list[SubscriptionRead]:
    """Webhook subscribers (without their secrets)."""
    return page.apply([SubscriptionRead.of(s) for s in service.list_subscriptions(session)])


@router.post("/webhooks/subscriptions/{subscription_id}/deactivate")
def deactivate_subscription(
    subscription_id: IdPath, session: DbSession, user: Service
) -> SubscriptionRead:
    """Stop sending to a subscriber."""
    sub = service.deactivate_subscription(session, subscription_id, actor=user)
    return SubscriptionRead.of(sub)


@router.post("/webhooks/subscriptions/{subscription_id}/rotate-secret")
def rotate_secret(
    subscription_id: IdPath, session: DbSession, user: Admin, settings: AppSettings
) -> SecretRotated:
    """Give a subscriber a new signing secret, shown once in this response (admin).

    For `FIELDOPS_WEBHOOK_ROTATION_OVERLAP_S` (24 h) every request carries two signatures in
    `X-Fieldops-Signature` (`v1=` with the new secret, then `v1=` with the old one); after it
    only the new one, and the old secret is wiped. Audited."""
    sub = service.rotate_secret(
        session,
        subscription_id,
        actor=user,
        overlap_s=settings.webhooks.rotation_overlap_s,
    )
    return SecretRotated.rotated(sub)


@router.get("/webhooks/deliveries")
def list_deliveries(
    page: Page,
    session: DbSession,
    _: Service,
    status: DeliveryStatus | None = None,
) -> list[DeliveryRead]:
    """Webhook outbox rows, newest first; `?status=dead` lists the webhook dead letters (events
    that failed their last attempt), which `POST /webhooks/deliveries/{id}/resend` sends again.
    (The job queue's own dead letters are at `GET /jobs/dead`.)"""
    rows = service.deliveries_page(session, page, status=status)
    return [DeliveryRead.of(d) for d in rows]


@router.post("/webhooks/deliveries/{delivery_id}/resend")
def resend_delivery(delivery_id: IdPath, session: DbSession, user: Admin) -> DeliveryRead:
    """Send a dead letter again (admin): pending, due now, attempts counted afresh, the same
    event id and sequence. Audited."""
    return DeliveryRead.of(service.resend_dead(session, delivery_id, actor=user))


# --------------------------------------------------------------------------------------------
# What subscribers receive: the OpenAPI ``webhooks`` section (main.py mounts this router there).

SIGNATURE_DOC = """Headers: `X-Fieldops-Event` (the event type), `X-Fieldops-Event-Id` (the same on
every retry: deduplicate on it) and `X-Fieldops-Signature: t=<unix seconds>,v1=<hex>` where each
`v1` is HMAC-SHA256 over `"<t>." + raw body` with the subscription's secret. During a secret
rotation's overlap (`FIELDOPS_WEBHOOK_ROTATION_OVERLAP_S`, 24 h) the header carries two `v1`
(the new secret's, then the old one's): accept the request when any matches. Reject a `t` more
than 300 s from your clock. Delivery is at least once; an order's events arrive in `sequence`
order (a later one waits while an earlier one is retried); any 2xx within
`FIELDOPS_WEBHOOK_ATTEMPT_DEADLINE_S` (10 s) counts as delivered, anything else is retried with
backoff and after the last attempt is a dead letter (`GET /webhooks/deliveries?status=dead`,
`POST /webhooks/deliveries/{id}/resend`). The README's "Webhooks" section has a verifier."""

EVENT_DOCS: dict[EventType, str] = {
    EventType.stage_changed: "An order moved to another stage "
    "(from_stage, to_stage, at, deadline).",
    EventType.visit_planned: "A crew booked a visit window with the customer (visit).",
    EventType.appointment_changed: "A booked, upcoming visit was replaced by a new window "
    "(visit, previous_visit); a visit_planned for the new window comes just before.",
    EventType.appointment_cancelled: "A booked visit was cancelled (visit.cancelled_at).",
    EventType.pause_started: "The order's clocks stopped for a customer-caused wait (pause).",
    EventType.pause_ended: "The wait ended; the clocks run again (pause.ended_at).",
    EventType.due_date_changed: "The governing clock's due date moved (clock, old_due_on, "
    "new_due_on, provisional): after a pause, a stage change or a newly published holiday "
    "schedule. The first computation of a due date is no move (stage_changed carries it).",
}

webhooks = APIRouter(tags=["webhooks"])


def _receiver(
    body: WebhookEvent,
    x_fieldops_event: Annotated[str, Header(description="The event type.")],
    x_fieldops_event_id: Annotated[str, Header(description="Deduplicate on it.")],
    x_fieldops_signature: Annotated[
        str, Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>]")
    ],
) -> None:
    """Never served: documents the request a subscriber's endpoint receives."""


for _event in EventType:
    webhooks.add_api_route(
        _event.value,
        _receiver,
        methods=["POST"],
        summary=f"{_event.value}: {EVENT_DOCS[_event]}",
        description=f"{EVENT_DOCS[_event]}\n\n{SIGNATURE_DOC}",
        operation_id=f"webhook_{_event.value}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses={204: {"description": "Any 2xx answer: delivered."}},
    )
