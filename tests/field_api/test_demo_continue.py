"""Every open demo order can be continued through the API from its stage: one step each, over
HTTP, as the crew, storekeeper and service desk would do it after `fieldops demo load`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api import demo
from field_api.auth.models import Crew
from field_api.auth.rules import DEMO_TOKENS
from field_api.checklists import evidence as check_evidence
from field_api.checklists import service as checklists
from field_api.config import Settings
from field_api.demo import photos
from field_api.demo.stories import demo_meter
from field_api.demo.world import passing_values
from field_api.schemes import service as schemes
from field_api.work_orders.models import WorkOrder
from tests.builders import auth
from tests.sms_support import SmsInbox

TOKENS = DEMO_TOKENS
CREW_TOKEN = {"CREW-A": TOKENS["crew"], "CREW-B": TOKENS["crew_b"]}


# The customers' phones: messages are queued, and reading them runs the sms queue's jobs.
RecordingNotifier = SmsInbox


class Walk:
    """One demo order, continued over HTTP."""

    def __init__(
        self, client: TestClient, session: Session, notifier: RecordingNotifier, key: str
    ) -> None:
        self.client, self.session, self.notifier = client, session, notifier
        self.order = session.execute(
            select(WorkOrder).where(WorkOrder.customer_id_number == key)
        ).scalar_one()
        self.id = self.order.id
        self.crew = auth(CREW_TOKEN[self._crew_code()])

    def _crew_code(self) -> str:
        crew = self.session.get(Crew, self.order.crew_id)
        assert crew is not None
        return crew.code

    def post(self, path: str, who: dict[str, str], **kw: Any) -> dict[str, Any]:
        r = self.client.post(path, headers=who, **kw)
        assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    def stage(self) -> str:
        r = self.client.get(f"/work-orders/{self.id}", headers=self.crew)
        assert r.status_code == 200, r.text
        stage: str = r.json()["stage"]
        return stage

    def photo(self, kind: str, meter: str | None = None) -> None:
        gps = (self.order.lat, self.order.lon)
        taken = datetime.now(UTC) - timedelta(minutes=1)
        if meter is not None:
            data = photos.barcode_photo(meter, taken=taken, gps=gps)
        else:
            data = photos.site_photo(f"continue/{self.id}/{kind}", taken=taken, gps=gps)
        fields = {"client_id": str(uuid.uuid4()), "kind": kind}
        if meter is not None:
            fields["scanned_value"] = meter
        self.post(
            f"/work-orders/{self.id}/media",
            self.crew,
            data=fields,
            files={"file": (f"{kind}.jpg", data, "image/jpeg")},
        )

    def arrive(self) -> int:
        site = {"lat": self.order.lat, "lon": self.order.lon}
        visit_id: int = self.post(
            f"/work-orders/{self.id}/visits/arrival", self.crew, json=site | {"accuracy_m": 5}
        )["id"]
        return visit_id

    def complete(self, visit_id: int) -> dict[str, Any]:
        site = {"lat": self.order.lat, "lon": self.order.lon}
        return self.post(f"/work-orders/{self.id}/visits/{visit_id}/complete", self.crew, json=site)

    def check(self, phase: str) -> dict[str, Any]:
        order = self.session.get(WorkOrder, self.id)
        assert order is not None
        self.session.refresh(order)
        gathered = check_evidence.gather(self.session, order)
        card = checklists.card_for(self.session, order, metering=gathered.metering)
        scheme = schemes.accepted_for_order_or_raise(self.session, self.id)
        values = passing_values(card, phase, scheme, seed=f"continue/{self.id}")
        return self.post(
            f"/work-orders/{self.id}/checklists/{phase}", self.crew, json={"values": values}
        )


def survey(w: Walk) -> None:
    visit = w.arrive()
    w.photo("site")
    assert w.complete(visit)["moved_through"] == ["surveyed"]


def answer_scheme(w: Walk) -> None:
    assert w.post(f"/work-orders/{w.id}/schemes", w.crew, json={})["status"] == "accepted"


def sign(w: Walk) -> None:
    w.post(f"/work-orders/{w.id}/contract", w.crew)
    w.post(f"/work-orders/{w.id}/contract/otp", w.crew)
    w.post(
        f"/work-orders/{w.id}/contract/signature",
        w.crew,
        files={"signature": ("s.png", photos.signature_png("continue"), "image/png")},
        data={"code": w.notifier.code_for(w.order.customer_phone)},
    )


def install(w: Walk) -> None:
    meter = demo_meter(700000 + w.id, None)
    store = auth(TOKENS["storekeeper"])
    reservation = w.post(
        f"/work-orders/{w.id}/kit-reservations", store, json={"depot_code": demo.DEPOT[0]}
    )
    w.post(f"/kit-reservations/{reservation['id']}/issue", store, json={"meter_barcode": meter})
    visit = w.arrive()
    for kind in ("meter_box", "wiring", "seal", "meter_before"):
        w.photo(kind)
    w.photo("barcode", meter=meter)
    assert w.complete(visit)["moved_through"] == ["installed"]


def inspect(w: Walk) -> None:
    assert w.check("before_energising")["passed"] is True


def energise(w: Walk) -> None:
    w.photo("meter_after")
    assert w.check("supply_on")["passed"] is True


def call_back(w: Walk) -> None:
    w.post(
        f"/work-orders/{w.id}/callback/result", auth(TOKENS["service"]), json={"satisfaction": 5}
    )


def close(w: Walk) -> None:
    w.post(f"/work-orders/{w.id}/transitions", auth(TOKENS["service"]), json={"to": "closed"})


def release(w: Walk) -> None:
    """The grid reinforcement is done: the white-listed order goes back where it was parked."""
    w.post(f"/work-orders/{w.id}/transitions", w.crew, json={"to": "surveyed"})


# (demo order, its stage, the step, the stage after it)
STEPS: list[tuple[str, str, Callable[[Walk], None], str]] = [
    ("DEMO000001", "accepted", survey, "surveyed"),
    ("DEMO000002", "surveyed", answer_scheme, "scheme_answered"),
    ("DEMO000003", "scheme_answered", sign, "contract_signed"),
    ("DEMO000004", "contract_signed", install, "installed"),
    ("DEMO000005", "installed", inspect, "inspected"),
    ("DEMO000006", "inspected", energise, "energised"),
    ("DEMO000007", "energised", call_back, "called_back"),
    ("DEMO000008", "called_back", close, "closed"),
    ("DEMO000010", "whitelisted", release, "surveyed"),
]


@pytest.fixture
def loaded(session: Session, settings: Settings, sms_inbox: SmsInbox) -> SmsInbox:
    demo.load(session, settings=settings)
    session.commit()
    return sms_inbox


def test_every_open_demo_order_continues_one_step_over_http(
    client: TestClient, session: Session, loaded: RecordingNotifier
) -> None:
    for key, before, step, after in STEPS:
        w = Walk(client, session, loaded, key)
        assert w.stage() == before, key
        step(w)
        assert w.stage() == after, key
