"""The access matrix: every route of the service × every role, against tests/access_matrix.yaml.

The expected table is reviewed by hand. For each ``"METHOD /path"`` it maps each role to

- ``allow``: the request gets past the access check (any status but 401/403 — a 404 of a missing
  sub-resource, a 409 of the order's stage or a 422 of a minimal body all count as allowed);
- ``deny``: 401 for ``anonymous``, 403 for a signed-in role;
- ``hide``: like deny, but 404 is accepted as well (the service may hide that the object exists).

Public routes (``/healthz``, ``/openapi.json``, the docs, static files, the public tracking page)
carry ``public: true`` and ``allow`` for every role. A route of ``create_app`` without a row (or a
row without a route) fails :func:`test_every_route_has_a_row`.

One application and one database per backend: the data is built once per test (an order of crew
A, a repair order of the repair crew, their sub-objects, ...), then every route is called for
every role. Roles go in an order where the expected denials come first, and a route whose allowed
call consumes its object (a DELETE, a revoke) gets a fresh object per role, so the order of the
requests does not change any decision.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api import demo
from field_api.audit import service as audit
from field_api.auth.models import ApiToken, Crew, User
from field_api.auth.rules import DEMO_TOKENS
from field_api.callbacks.models import ReviewFlag
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.storage import MediaStore
from field_api.config import MediaSettings, Settings
from field_api.contracts import service as contracts
from field_api.deadlines import service as deadlines
from field_api.errors import Forbidden, NotFound
from field_api.inspections import importing, repairs, review
from field_api.inspections.models import LedgerLine, LedgerTask, RepairOrder
from field_api.inspections.rules import FindingStatus, RepairStage
from field_api.jobs import service as jobs
from field_api.kits import service as kits
from field_api.leases import service as leases
from field_api.main import create_app
from field_api.media import service as media
from field_api.media.rules import MediaKind
from field_api.media.schemas import MediaCreate
from field_api.reliability import outages, planning, register
from field_api.reliability.planning_schemas import PlannedOutageCreate
from field_api.reliability.rules import CUSTOMER_COLUMNS
from field_api.reliability.schemas import OutageCreate
from field_api.schemes import service as schemes
from field_api.schemes.schemas import SchemeCreate
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery, WebhookSubscription
from field_api.visits import service as visits
from field_api.work_orders.models import WorkOrder
from tests.builders import auth, make_user
from tests.field_api.inspections.test_service import write_batch

MATRIX_PATH = Path(__file__).with_name("access_matrix.yaml")
ROLES = (
    "anonymous",
    "other_crew",
    "repair_crew",
    "order_crew",
    "inspector",
    "storekeeper",
    "dispatcher",
    "planner",
    "service",
    "admin",
)
DEMO_KEYS = {
    "other_crew": "crew_b",
    "repair_crew": "repair_crew",
    "order_crew": "crew",
    "inspector": "inspector",
    "storekeeper": "storekeeper",
    "dispatcher": "dispatcher",
    "planner": "planner",
    "service": "service",
    "admin": "admin",
}
DECISIONS = ("allow", "deny", "hide")


def route_keys(app: FastAPI) -> dict[str, str]:
    """``"METHOD /path"`` of every route the application answers → the endpoint's name."""
    keys: dict[str, str] = {}
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None:
            continue
        methods = set(route.methods or ()) - {"HEAD"} or {"HEAD"}
        for method in sorted(methods):
            keys[f"{method} {path}"] = str(route.name)
    return keys


def load_matrix() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(MATRIX_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("routes"), dict)
    routes: dict[str, dict[str, Any]] = data["routes"]
    return routes


def expected_of(row: dict[str, Any]) -> dict[str, str]:
    """The row's decision per role (``public: true`` rows allow everyone)."""
    if row.get("public"):
        return dict.fromkeys(ROLES, "allow")
    return {role: str(row[role]) for role in ROLES}


# -- the route table and the YAML agree -------------------------------------------------------


def test_every_route_has_a_row() -> None:
    app = create_app(Settings(env="test", database_url="sqlite://"))
    routes = set(route_keys(app))
    rows = load_matrix()
    missing = sorted(routes - set(rows))
    stale = sorted(set(rows) - routes)
    assert not missing, f"routes without a row in {MATRIX_PATH.name}: {missing}"
    assert not stale, f"rows of {MATRIX_PATH.name} without a route: {stale}"
    for key, row in rows.items():
        if row.get("public"):
            assert set(row) <= {"public", "note"}, key
            continue
        assert set(row) - {"note"} == set(ROLES), (key, sorted(set(row) ^ set(ROLES)))
        for role in ROLES:
            assert row[role] in DECISIONS, (key, role, row[role])
        assert row["anonymous"] == "deny", f"{key}: only public rows admit anonymous callers"


def test_a_new_route_without_a_row_is_reported() -> None:
    app = create_app(Settings(env="test", database_url="sqlite://"))

    @app.get("/surprise/{thing_id}")
    def surprise(thing_id: int) -> dict[str, int]:
        return {"thing_id": thing_id}

    assert "GET /surprise/{thing_id}" in set(route_keys(app)) - set(load_matrix())


# -- the world the requests run against -------------------------------------------------------


def _jpeg(color: tuple[int, int, int] = (90, 120, 160)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class World:
    """Ids of the objects the requests name, built once through the services."""

    session: Session
    settings: Settings
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    admin: Principal | None = None
    crew_a: Principal | None = None

    def principal(self, user: User) -> Principal:
        crew = self.session.get(Crew, user.crew_id) if user.crew_id else None
        return Principal(
            user_id=user.id,
            name=user.name,
            role=user.role,
            crew_id=user.crew_id,
            district_id=crew.district_id if crew else None,
        )

    def build(self) -> None:
        s, settings = self.session, self.settings
        demo.load(s, settings=settings)
        self.tokens = {role: DEMO_TOKENS[key] for role, key in DEMO_KEYS.items()}
        users = {u.name: u for u in s.execute(select(User)).scalars()}
        by_key = {key: users[name] for key, name, _, _ in demo.USERS}
        self.admin = self.principal(by_key["admin"])
        self.crew_a = self.principal(by_key["crew"])
        order = s.execute(
            select(WorkOrder).where(WorkOrder.customer_id_number == "DEMO000002")
        ).scalar_one()
        assert order.crew_id == self.crew_a.crew_id
        ids = self.ids
        ids["order_id"] = order.id
        # surveyed next to the demo's first transformer: the scheme passes and is accepted
        tx_lon, tx_lat = demo.TRANSFORMERS[0][4], demo.TRANSFORMERS[0][5]
        request = SchemeCreate(lon=tx_lon + 0.0003, lat=tx_lat, accept=True)
        scheme = schemes.request_scheme(s, order.id, request, actor=self.admin)
        assert scheme.status == "accepted", scheme.answer
        ids["scheme_id"] = scheme.id
        deadlines.start_pause(s, order, reason="customer_works", note=None, actor=self.admin)
        ids["pause_id"] = deadlines.pauses_of(s, order.id)[-1].id
        start = clock.now() + timedelta(days=2)
        planned = deadlines.book_visit(
            s,
            order,
            window_start=start,
            window_end=start + timedelta(hours=2),
            note=None,
            actor=self.admin,
        )
        ids["appointment_id"] = planned.id
        visit = visits.arrive(s, order.id, actor=self.crew_a, lat=order.lat, lon=order.lon)
        ids["visit_id"] = visit.id
        reservation = kits.reserve_for_order(
            s, order.id, depot_code=demo.DEPOT[0], actor=self.admin
        )
        ids["reservation_id"] = reservation.id
        ids["depot_code"] = demo.DEPOT[0]
        ids["kit_code"] = schemes.accepted_for_order_or_raise(s, order.id).kit_code
        ids["material_code"] = kits.stock_of(s, kits.get_depot_or_raise(s, demo.DEPOT[0]))[
            0
        ].material_code
        ids["transformer_code"] = demo.TRANSFORMERS[0][0]
        ids["media_id"] = self.new_photo(order.id)
        ids["upload_id"] = self.new_upload(order.id)
        ids["tracking_token"] = tracking.token_for(s, order).token
        ids["subscription_id"] = self.new_subscription()
        ids["flag_id"] = self.new_flag(order)
        ids["token_id"] = self.new_token_id()
        ids["job_id"] = self.new_dead_job()
        ids["outage_id"] = outages.record_outage(
            s, OutageCreate.model_validate(OVERRIDE_OUTAGE), self.admin
        ).id
        _planned_register(s, self.admin)
        ids["request_id"] = planning.request_outage(
            s, settings, PlannedOutageCreate.model_validate(_planned(self)), self.admin
        ).id
        self.build_inspections()
        s.commit()

    def new_photo(self, order_id: int) -> int:
        temp = MediaStore(self.settings.media_dir).new_temp()
        temp.write(_jpeg())
        temp.finish()
        item, _ = media.create_item(
            self.session,
            order_id=order_id,
            data=MediaCreate(client_id=str(uuid.uuid4()), kind=MediaKind.site),
            staged=media.StagedFile(temp.path, temp.sha256, temp.size, temp.head),
            file_name=None,
            actor=self.crew_a,  # type: ignore[arg-type]
            settings=self.settings,
            cfg=MediaSettings(),
        )
        return item.id

    def new_upload(self, order_id: int | None = None) -> str:
        upload = media.create_upload(
            self.session,
            order_id=order_id or self.ids["order_id"],
            data=MediaCreate(client_id=str(uuid.uuid4()), kind=MediaKind.site),
            length=1000,
            file_name=None,
            actor=self.crew_a,  # type: ignore[arg-type]
            settings=self.settings,
            cfg=MediaSettings(),
        )
        self.session.commit()
        return str(upload.id)

    def new_subscription(self) -> int:
        row = WebhookSubscription(
            name=f"matrix-{uuid.uuid4().hex[:6]}",
            url="https://receiver.example.org/hook",
            events=["stage_changed"],
            secret=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        )
        self.session.add(row)
        self.session.flush()
        audit.record(self.session, actor=None, action="webhook.subscribe", entity=row)
        self.session.commit()
        return row.id

    def new_dead_delivery(self) -> int:
        """A webhook dead letter (re-sending it consumes it: one per call)."""
        row = WebhookDelivery(
            subscription_id=self.new_subscription(),
            event_id=str(uuid.uuid4()),
            event_type="stage_changed",
            payload={"event": "stage_changed"},
            status="dead",
            attempts=12,
        )
        self.session.add(row)
        self.session.commit()
        return row.id

    def new_flag(self, order: WorkOrder) -> int:
        row = ReviewFlag(
            order_id=order.id, kind="callback_unsatisfied", reason="matrix", detected_at=clock.now()
        )
        self.session.add(row)
        self.session.flush()
        audit.record(self.session, actor=None, action="review_flag.raise", entity=row)
        self.session.commit()
        return row.id

    def new_dead_job(self) -> int:
        owner = leases.owner_id("matrix")
        job_id = jobs.enqueue(self.session, "matrix.job", max_attempts=1)
        jobs.claim(self.session, queues=None, owner=owner, lease_s=60)
        jobs.fail(self.session, job_id, "matrix", owner=owner)
        self.session.commit()
        return job_id

    def new_token_id(self) -> int:
        user, _ = make_user(self.session, self.settings, role=Role.planner)
        token = self.session.execute(
            select(ApiToken).where(ApiToken.user_id == user.id)
        ).scalar_one()
        self.session.commit()
        return token.id

    def build_inspections(self) -> None:
        s = self.session
        batch = write_batch(self.tmp / f"batch-{uuid.uuid4().hex[:6]}")
        # batches are read only under the configured inspections folder
        vision = self.settings.vision.model_copy(update={"inspections_dir": self.tmp})
        local = self.settings.model_copy(update={"vision": vision})
        importing.import_batch(s, batch, settings=local, actor=None)
        repair_crew = s.execute(select(Crew).where(Crew.code == "REPAIR-1")).scalar_one()
        line = s.get(LedgerLine, "L-10KV-01")
        assert line is not None
        line.district_id = repair_crew.district_id
        inspector = s.execute(select(User).where(User.role == Role.inspector)).scalars().first()
        assert inspector is not None
        _, repair = review.review(
            s,
            "det-defect",
            decision=FindingStatus.confirmed,
            actor=self.principal(inspector),
            settings=self.settings,
        )
        assert repair is not None and repair.crew_id == repair_crew.id
        self.ids["repair_id"] = repair.id
        self.ids["finding_id"] = "det-insulator"  # still proposed: reviewable
        self.ids["defect_id"] = "det-defect"  # has an evidence crop
        self.ids["photo_id"] = hashlib.sha256((batch / "DJI_0001.JPG").read_bytes()).hexdigest()
        task = s.execute(select(LedgerTask)).scalars().first()
        assert task is not None
        self.ids["task_id"] = task.id
        assert s.get(RepairOrder, repair.id) is not None


# -- the requests -----------------------------------------------------------------------------

# Path parameters by name; some names mean different things on different routes.
PARAM_NAMES = {
    "order_id": "order_id",
    "scheme_id": "scheme_id",
    "pause_id": "pause_id",
    "visit_id": "visit_id",
    "reservation_id": "reservation_id",
    "material_code": "material_code",
    "media_id": "media_id",
    "upload_id": "upload_id",
    "token": "tracking_token",
    "subscription_id": "subscription_id",
    "delivery_id": "delivery_id",
    "job_id": "job_id",
    "flag_id": "flag_id",
    "token_id": "token_id",
    "repair_id": "repair_id",
    "finding_id": "finding_id",
    "photo_id": "photo_id",
    "task_id": "task_id",
    "outage_id": "outage_id",
    "request_id": "request_id",
}
PARAM_BY_ROUTE = {
    ("/kits/{code}", "code"): "kit_code",
    ("/materials/{code}", "code"): "material_code",
    ("/depots/{code}/stock", "code"): "depot_code",
    ("/depots/{code}/receipts", "code"): "depot_code",
    ("/depots/{code}/stock/{material_code}/reorder-level", "code"): "depot_code",
    ("/network/transformers/{code}", "code"): "transformer_code",
    ("/work-orders/{order_id}/appointments/{visit_id}/cancel", "visit_id"): "appointment_id",
    ("/inspections/findings/{finding_id}/crop", "finding_id"): "defect_id",
}
LITERALS = {
    "phase": "before_energising",
    "kind": "before",
    "path": "app.css",
    "code": "en",
    "line_id": "L-10KV-01",
    "district": "SZ-NS",
    "year": "2026",
}


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    kwargs: dict[str, Any]


def _url(path: str, ids: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        key = PARAM_BY_ROUTE.get((path, name)) or PARAM_NAMES.get(name)
        if key is not None:
            return str(ids[key])
        return LITERALS[name]

    return re.sub(r"\{([^}]+)\}", value, path)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PERIOD = {"from": "2025-01-01", "to": "2025-12-31"}
QUERIES: dict[str, dict[str, Any]] = {
    "GET /deadlines/compliance": PERIOD,
    "GET /deadlines/compliance.csv": PERIOD,
    "GET /planner/first-pass": PERIOD,
    "GET /planner/first-pass.csv": PERIOD,
    "GET /planner/failing-items": PERIOD,
    "GET /planner/failing-items.csv": PERIOD,
    "GET /planner/one-visit": PERIOD,
    "GET /planner/one-visit.csv": PERIOD,
    "GET /planner/trend": PERIOD,
    "GET /planner/trend.csv": PERIOD,
    "GET /network/transformers": {"lon": demo.BASE_LON, "lat": demo.BASE_LAT},
}


def _window(w: World) -> dict[str, str]:
    start = clock.now() + timedelta(days=3)
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=2)).isoformat(),
    }


def _photo_form(w: World) -> dict[str, Any]:
    return {
        "data": {"client_id": str(uuid.uuid4()), "kind": "site"},
        "files": {"file": ("site.jpg", _jpeg(), "image/jpeg")},
    }


def _repair_crew(world: World) -> Crew:
    return world.session.execute(select(Crew).where(Crew.code == "REPAIR-1")).scalar_one()


OVERRIDE_OUTAGE: dict[str, Any] = {
    "kind": "fault", "cause": "fault", "override_customers": 5,
    "override_reason": "register incomplete", "override_district": "SZ-NS",
    "override_area": "urban",
}

def _planned_register(s: Session, admin: Principal) -> None:
    """A feeder section with one customer, for the planned-outage routes."""
    code = demo.TRANSFORMERS[0][0]
    register.import_sections(s, f"switch_code,feeder,district,transformer_code\nSW-AM,F-AM,"
                             f"SZ-NS,{code}\n".encode(), filename="s.csv", actor=admin)
    row = f"AM-1,张三,13800138000,SP-AM,lv,{code},SW-AM,urban,2020-01-01"
    register.import_customers(s, (",".join(CUSTOMER_COLUMNS) + "\n" + row).encode(),
                              filename="c.csv", actor=admin)


def _planned(w: World) -> dict[str, Any]:
    start = clock.now() + timedelta(days=30)
    return {"work": "access matrix", "switch_code": "SW-AM", "start_at": start.isoformat(),
            "end_at": (start + timedelta(hours=2)).isoformat()}


# Bodies that pass validation, so a service's own access check decides (not a 422 before it).
# Each one leaves shared objects usable: a transition to the current stage, a no-op level, ...
BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "POST /depots": lambda w: {"json": {"code": f"DEP-MX-{uuid.uuid4().hex[:6]}", "name": "仓"}},
    "POST /depots/{code}/receipts": lambda w: {"json": {"lines": {w.ids["material_code"]: 1}}},
    "PUT /depots/{code}/stock/{material_code}/reorder-level": lambda w: {"json": {"level": 5}},
    "POST /kit-reservations/{reservation_id}/close": lambda w: {"json": {"consumed": {}}},
    "POST /kit-reservations/{reservation_id}/issue": lambda w: {
        "json": {"meter_barcode": "1100101234567890123456"}
    },
    "POST /repair-orders/{repair_id}/transitions": lambda w: {"json": {"to": "on_site"}},
    "POST /repair-orders/{repair_id}/assign": lambda w: {"json": {"crew_id": _repair_crew(w).id}},
    "PUT /admin/line-dispatch/{line_id}": lambda w: {
        "json": {"district_id": _repair_crew(w).district_id}
    },
    "PUT /inspections/findings/{finding_id}/asset": lambda w: {"json": {"asset_id": "P-001"}},
    "POST /repair-orders/{repair_id}/photos/{kind}": lambda w: {
        "files": {"file": ("before.jpg", _jpeg(), "image/jpeg")}
    },
    "POST /work-orders/{order_id}/appointments": lambda w: {"json": _window(w)},
    "POST /work-orders/{order_id}/pauses": lambda w: {"json": {"reason": "customer_request"}},
    "POST /work-orders/{order_id}/checklists/{phase}": lambda w: {"json": {"values": {}}},
    "POST /work-orders/{order_id}/contract/signature": lambda w: {
        "data": {"code": "000000"},
        "files": {"signature": ("sig.png", _jpeg(), "image/png")},
    },
    "POST /work-orders/{order_id}/kit-reservations": lambda w: {
        "json": {"depot_code": w.ids["depot_code"]}
    },
    "POST /work-orders/{order_id}/transitions": lambda w: {"json": {"to": "surveyed"}},
    "POST /work-orders/{order_id}/visits/arrival": lambda w: {
        "json": {"lat": demo.BASE_LAT, "lon": demo.BASE_LON}
    },
    "POST /work-orders/{order_id}/visits/{visit_id}/depart": lambda w: {
        "json": {"lat": demo.BASE_LAT, "lon": demo.BASE_LON}
    },
    "POST /work-orders/{order_id}/media": _photo_form,
    "POST /work-orders/{order_id}/media/uploads": lambda w: {
        "headers": {
            "Upload-Length": "1000",
            "Upload-Metadata": f"client_id {_b64(str(uuid.uuid4()))},kind {_b64('site')}",
        }
    },
    "POST /reliability/sections/imports": lambda w: {
        "files": {"file": ("s.csv", b"switch_code,feeder,district,transformer_code\n", "text/csv")}
    },
    "POST /reliability/customers/imports": lambda w: {
        "files": {"file": ("c.csv", (",".join(CUSTOMER_COLUMNS) + "\n").encode(), "text/csv")}
    },
    "POST /reliability/outages/imports": lambda w: {
        "files": {"file": ("o.csv", b"ref,kind,cause,start_at\n", "text/csv")}
    },
    "POST /reliability/snapshots": lambda w: {"json": {"month": "2026-01-01"}},
    "POST /reliability/outages": lambda w: {"json": OVERRIDE_OUTAGE},
    "POST /reliability/outages/{outage_id}/restorations": lambda w: {
        "json": {"transformer_codes": ["TX-NOT-OUT"]}
    },
    "PUT /reliability/med-threshold": lambda w: {
        "json": {"threshold_min": 30, "reason": "access matrix"}
    },
    "PUT /reliability/budgets/{district}/{year}": lambda w: {
        "json": {"customer_hours": 500, "reason": "access matrix"}
    },
    "POST /reliability/planned-outages": lambda w: {"json": _planned(w)},
    "POST /reliability/planned-outages/imports": lambda w: {
        "files": {"file": ("p.csv", b"work,switch_code,start_at,end_at\n", "text/csv")}
    },
    "POST /reliability/planned-outages/{request_id}/approve": lambda w: {
        "json": {"overspend_reason": "access matrix"}
    },
    "PUT /reliability/planned-outages/{request_id}/window": lambda w: {
        "json": {k: v for k, v in _planned(w).items() if k.endswith("_at")}
    },
    "POST /reliability/planned-outages/{request_id}/cancel": lambda w: {
        "json": {"reason": "access matrix"}
    },
    "POST /reliability/merges": lambda w: {
        "json": {"request_ids": [w.ids["request_id"], w.ids["request_id"]]}
    },
    "POST /reliability/live-line-jobs": lambda w: {
        "json": {"work": "access matrix", "switch_code": "SW-AM",
                 "done_on": clock.china_today().isoformat(), "outage_hours": 2}
    },
    "POST /contracts/verify": lambda w: {
        "files": {"file": ("contract.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")}
    },
}

# A call that consumes its object (deletes or revokes it) gets a new one for every role.
FRESH: dict[str, Callable[[World], dict[str, Any]]] = {
    "DELETE /media/uploads/{upload_id}": lambda w: {"upload_id": w.new_upload()},
    "POST /admin/tokens/{token_id}/revoke": lambda w: {"token_id": w.new_token_id()},
    "POST /webhooks/subscriptions/{subscription_id}/deactivate": lambda w: {
        "subscription_id": w.new_subscription()
    },
    "POST /webhooks/deliveries/{delivery_id}/resend": lambda w: {
        "delivery_id": w.new_dead_delivery()
    },
}


def call_for(world: World, key: str) -> Call:
    """The request of ``key``: plausible ids, a body that passes validation where it matters."""
    method, path = key.split(" ", 1)
    ids = dict(world.ids)
    if key in FRESH:
        ids.update(FRESH[key](world))
    headers: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    if "/media/uploads" in path:
        headers["Tus-Resumable"] = "1.0.0"
    if method == "PATCH" and path.startswith("/media/uploads"):
        headers["Content-Type"] = "application/offset+octet-stream"
        headers["Upload-Offset"] = "0"
        kwargs["content"] = b"x" * 10
    elif key in BODIES:
        extra = BODIES[key](world)
        headers.update(extra.pop("headers", {}))
        kwargs.update(extra)
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    if key in QUERIES:
        kwargs["params"] = QUERIES[key]
    kwargs["headers"] = headers
    return Call(method, _url(path, ids), kwargs)


# Allowed calls whose object does not exist yet in the built data (404 after the access check).
# Anywhere else a 404 for an allowed role means the test's ids miss: that is reported.
MAY_BE_MISSING = frozenset(
    {
        "GET /media/{media_id:int}/thumbnail",  # made by the analysis, not run here
        "GET /work-orders/{order_id}/callback",  # scheduled once energised
        "DELETE /admin/line-dispatch/{line_id}",  # a rule exists once the PUT has run
        "GET /work-orders/{order_id}/contract",  # generated by a POST (reads run first)
        "GET /work-orders/{order_id}/contract/pdf",
    }
)


def decision_of(status: int, expected: str) -> str:
    """What a status says about the access decision, read in the light of the expectation."""
    if status in (401, 403):
        return expected if expected in ("deny", "hide") else "deny"
    if status == 404 and expected == "hide":
        return "hide"
    return "allow"


def run_matrix(client: TestClient, world: World) -> tuple[list[str], dict[str, dict[str, int]]]:
    rows = load_matrix()
    problems: list[str] = []
    seen: dict[str, dict[str, int]] = {}
    keys = sorted(rows, key=lambda k: (not k.startswith("GET "), k))  # reads first
    for key in keys:
        row = rows[key]
        expected = expected_of(row)
        seen[key] = {}
        # expected denials first: they must see the objects as an allowed call found them
        for role in sorted(ROLES, key=lambda r: expected[r] == "allow"):
            call = call_for(world, key)
            headers = dict(call.kwargs.get("headers", {}))
            if role != "anonymous":
                headers.update(auth(world.tokens[role]))
            kwargs = {**call.kwargs, "headers": headers}
            r = client.request(call.method, call.url, **kwargs)
            seen[key][role] = r.status_code
            if r.status_code >= 500:
                problems.append(f"{key} as {role}: {r.status_code} {r.text[:200]}")
                continue
            got = decision_of(r.status_code, expected[role])
            want = "deny" if expected[role] == "hide" and got == "deny" else expected[role]
            if got != want:
                problems.append(
                    f"{key} as {role}: expected {expected[role]}, got {r.status_code} "
                    f"{r.text[:160]}"
                )
            if got == "allow" and r.status_code == 404 and key not in MAY_BE_MISSING:
                problems.append(f"{key} as {role}: 404, the test's ids miss the object")
            if role == "anonymous" and not row.get("public") and r.status_code != 401:
                problems.append(f"{key} as anonymous: {r.status_code}, not 401")
    return problems, seen


def test_access_matrix(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    world = World(session, settings, tmp_path)
    world.build()
    problems, seen = run_matrix(client, world)
    dump = os.environ.get("FIELDOPS_MATRIX_DUMP")
    if dump:
        Path(dump).write_text(yaml.safe_dump(seen, allow_unicode=True, sort_keys=True))
    assert not problems, "unexpected access decisions:\n" + "\n".join(problems)


# -- the unexpected allows the matrix found (order 11), pinned at the service level ------------


def test_found_allows_are_refused_by_the_services(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    world = World(session, settings, tmp_path)
    demo.load(session, settings=settings)
    world.build_inspections()
    users = {u.name: u for u in session.execute(select(User)).scalars()}
    who = {key: world.principal(users[name]) for key, name, _, _ in demo.USERS}
    order = session.execute(
        select(WorkOrder).where(WorkOrder.customer_id_number == "DEMO000002")
    ).scalar_one()
    repair_id = world.ids["repair_id"]

    # a storekeeper reads orders (kits) but not the contract (identity number) nor the evidence
    with pytest.raises(Forbidden):
        contracts.get_for_actor(session, order.id, who["storekeeper"])
    with pytest.raises(Forbidden):
        media.list_for_order(session, order.id, who["storekeeper"])
    planner_sees = media.list_for_order(session, order.id, who["planner"])
    assert planner_sees == media.list_for_order(session, order.id, who["admin"])

    # evidence comes from the order's crew (or an admin): the service desk may not add any
    with pytest.raises(Forbidden):
        media.order_for_evidence(session, order.id, who["service"])
    assert media.order_for_evidence(session, order.id, who["crew"]).id == order.id

    # repair photos: only the repair crew (or an admin); planners, service, inspectors refused
    for key in ("planner", "service", "inspector", "storekeeper"):
        with pytest.raises(Forbidden):
            repairs.add_repair_photo(
                session, repair_id, kind="before", data=_jpeg(), actor=who[key], settings=settings
            )
    # moving a repair: a role that never moves repairs gets 403 whatever the target's stage
    for target in RepairStage:
        with pytest.raises(Forbidden):
            repairs.move_repair(session, repair_id, target, actor=who["planner"])
    # the defect crop: repair crew yes, another crew hidden, storekeeper and service refused
    assert review.crop_for_actor(session, "det-defect", who["repair_crew"]).id == "det-defect"
    with pytest.raises(NotFound):
        review.crop_for_actor(session, "det-defect", who["crew_b"])
    for key in ("storekeeper", "service"):
        with pytest.raises(Forbidden):
            review.crop_for_actor(session, "det-defect", who[key])
