"""The demo's actors doing their work through the services the API uses.

Each method is one thing a person does (the service clerk records an application, the crew
arrives, photographs, requests the scheme, has the customer sign, the storekeeper issues the
kit, ...), called at the time the :class:`~field_api.common.clock.ManualClock` shows, so every
stored time (stage changes, deadlines, visit durations, photo times) follows from the story.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth.models import User
from field_api.callbacks import rules as callback_rules
from field_api.callbacks import service as callbacks
from field_api.checklists import evidence as check_evidence
from field_api.checklists import service as checklists
from field_api.checklists.rules import ItemValue
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.storage import store_of
from field_api.config import Settings
from field_api.contracts import service as contracts
from field_api.demo import photos
from field_api.kits import service as kits
from field_api.media import service as media
from field_api.media.models import MediaItem
from field_api.media.rules import MediaKind
from field_api.media.schemas import MediaCreate
from field_api.schemes import service as schemes
from field_api.schemes.schemas import SchemeCreate
from field_api.sms import service as sms
from field_api.sms.rules import SmsTemplate
from field_api.visits import service as visits
from field_api.visits.models import Visit
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Area, Category, Channel, Stage
from field_api.work_orders.schemas import WorkOrderCreate

# The namespace of the demo's client ids: uuid5(namespace, seed) is stable across loads.
CLIENT_IDS = uuid.UUID("6f0f1a52-3c1e-4a8e-9d0b-2f5d7f0c9a11")


@dataclass(frozen=True)
class OrderSpec:
    """One customer's application, as the service desk records it."""

    id_number: str
    name: str
    phone: str
    category: Category
    kw: float
    phases: int
    district: str
    crew: str | None
    address: str
    lon: float
    lat: float
    applied_on: date
    channel: Channel = Channel.app


@dataclass
class Cast:
    """The people of the demo as the services see them."""

    admin: Principal
    service: Principal
    storekeeper: Principal
    crews: dict[str, Principal] = field(default_factory=dict)


def cast_of(session: Session, crew_members: dict[str, str]) -> Cast:
    """Principals of the demo users (``crew_members``: crew code → user name)."""

    def principal(user: User) -> Principal:
        return Principal(
            user_id=user.id, name=user.name, role=user.role, crew_id=user.crew_id
        )

    def first(role: Role) -> Principal:
        user = session.execute(
            select(User).where(User.role == role).order_by(User.id).limit(1)
        ).scalar_one()
        return principal(user)

    crews = {}
    for crew_code, user_name in crew_members.items():
        user = session.execute(select(User).where(User.name == user_name)).scalar_one()
        crews[crew_code] = principal(user)
    return Cast(
        admin=first(Role.admin),
        service=first(Role.service),
        storekeeper=first(Role.storekeeper),
        crews=crews,
    )


def passing_values(card: Any, phase: str, scheme: Any, *, seed: str) -> dict[str, ItemValue]:
    """Readings that pass every item of ``phase`` (slightly different per order)."""
    wobble = int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) / 65535  # 0..1
    references = {
        "scheme_cable_section_mm2": scheme.cable_section_mm2,
        "scheme_breaker_rating_a": scheme.breaker_rating_a,
        "scheme_ct_primary_a": scheme.ct_primary_a,
    }
    values: dict[str, ItemValue] = {}
    for item in card.items_in(phase):
        if item.type == "measurement":
            if item.reference is not None:
                ref = references.get(item.reference)
                if ref is not None:
                    values[item.code] = ref
                continue
            lower, upper = item.lower, item.upper
            if lower is not None and upper is not None:
                value = lower + (upper - lower) * (0.35 + 0.3 * wobble)
            elif lower is not None:
                value = lower * (20 + 30 * wobble) if lower < 1 else lower * (1.2 + 0.3 * wobble)
            else:
                assert upper is not None
                value = upper * (0.45 + 0.3 * wobble)
            values[item.code] = round(value, 1)
        elif item.type == "yes_no":
            values[item.code] = True
        elif item.type == "choice":
            values[item.code] = item.pass_options[0]
        elif item.type == "text":
            n = int(wobble * 9000) + 1000
            values[item.code] = f"SG2026{n:04d}, SG2026{n + 1:04d}"
    return values


# What a first attempt gets wrong, by the item that fails (a reading out of its limits).
FAILURES: dict[str, ItemValue] = {
    "earthing_resistance": 12.6,
    "insulation_resistance": 0.3,
    "seal_numbers": "SG20260001",
    "wiring_correct": False,
}


class World:
    """The demo's people at work, on one session and one manual clock."""

    def __init__(
        self, session: Session, settings: Settings, manual: clock.ManualClock, cast: Cast
    ) -> None:
        self.session = session
        self.settings = settings
        self.clock = manual
        self.cast = cast
        self.cfg = settings.media

    # -- time -----------------------------------------------------------------------------

    def at(self, when: datetime) -> None:
        """Move the clock to ``when`` (never backwards)."""
        if when > self.clock.now():
            self.clock.set(when)

    def later(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    # -- the service desk -----------------------------------------------------------------

    def record_application(self, spec: OrderSpec) -> WorkOrder:
        order = orders.create(
            self.session,
            WorkOrderCreate(
                customer_name=spec.name,
                customer_phone=spec.phone,
                customer_id_number=spec.id_number,
                category=spec.category,
                capacity_kw=spec.kw,
                phases=spec.phases,
                address=spec.address,
                lon=spec.lon,
                lat=spec.lat,
                district_code=spec.district,
                crew_code=spec.crew,
                area=Area.urban,
                channel=spec.channel,
                applied_on=spec.applied_on,
            ),
            actor=self.cast.service,
        )
        self.session.flush()
        return order

    # -- the crew on site -----------------------------------------------------------------

    def crew_of(self, order: WorkOrder) -> Principal:
        return next(p for p in self.cast.crews.values() if p.crew_id == order.crew_id)

    def arrive(self, order: WorkOrder) -> Visit:
        visit = visits.arrive(
            self.session,
            order.id,
            actor=self.crew_of(order),
            lat=order.lat + 0.00008,
            lon=order.lon - 0.00006,
            accuracy_m=6,
            device_time=clock.now(),
        )
        self.session.flush()
        return visit

    def complete(self, order: WorkOrder, visit: Visit) -> visits.Completion:
        return visits.complete(
            self.session,
            order.id,
            visit.id,
            actor=self.crew_of(order),
            device_time=clock.now(),
            lat=order.lat,
            lon=order.lon,
        )

    def depart(self, order: WorkOrder, visit: Visit) -> None:
        visits.depart(
            self.session,
            order.id,
            visit.id,
            actor=self.crew_of(order),
            lat=order.lat,
            lon=order.lon,
            device_time=clock.now(),
        )

    def photo(
        self,
        order: WorkOrder,
        kind: MediaKind,
        *,
        taken: datetime | None = None,
        with_gps: bool = True,
        meter: str | None = None,
    ) -> MediaItem:
        """Upload one photo (taken a minute ago unless said) and analyse it at once."""
        seed = f"{order.customer_id_number}/{kind.value}/{len(self._kinds(order))}"
        when = taken if taken is not None else clock.now() - timedelta(minutes=1)
        gps = (order.lat + 0.00005, order.lon + 0.00004) if with_gps else None
        if meter is not None:
            data = photos.barcode_photo(meter, taken=when, gps=gps)
        else:
            data = photos.site_photo(seed, taken=when, gps=gps)
        store = store_of(self.settings)
        temp = store.new_temp()
        try:
            temp.write(data)
            temp.finish()
            staged = media.StagedFile(
                path=temp.path, sha256=temp.sha256, size_bytes=len(data), head=data[:64]
            )
            item, _ = media.create_item(
                self.session,
                order_id=order.id,
                data=MediaCreate(
                    client_id=str(uuid.uuid5(CLIENT_IDS, seed)),
                    kind=kind,
                    scanned_value=meter,
                ),
                staged=staged,
                file_name=f"{kind.value}.jpg",
                actor=self.crew_of(order),
                settings=self.settings,
                cfg=self.cfg,
            )
        finally:
            temp.discard()
        media.analyse_in_session(self.session, item, settings=self.settings, cfg=self.cfg)
        return item

    def _kinds(self, order: WorkOrder) -> list[str]:
        return list(
            self.session.execute(
                select(MediaItem.kind).where(MediaItem.order_id == order.id)
            ).scalars()
        )

    def request_scheme(self, order: WorkOrder) -> None:
        row = schemes.request_scheme(
            self.session, order.id, SchemeCreate(), actor=self.crew_of(order)
        )
        if row.status != "accepted":
            why = row.answer.get("failures") if isinstance(row.answer, dict) else None
            raise RuntimeError(f"demo order {order.customer_id_number}: scheme {row.status}: {why}")

    def code_for(self, phone: str) -> str:
        """The signing code the customer reads on their phone (the queued SMS to them)."""
        params = sms.latest_params(self.session, self.settings, phone, SmsTemplate.otp)
        if params is None or not re.fullmatch(r"\d{6}", params.get("code", "")):
            raise RuntimeError("the signing SMS carries no six-digit code")
        return params["code"]

    def sign_contract(self, order: WorkOrder) -> None:
        crew = self.crew_of(order)
        contracts.generate(self.session, order.id, actor=crew, settings=self.settings)
        self.later(3)
        contracts.request_code(self.session, order.id, actor=crew, settings=self.settings)
        self.later(2)
        signed = contracts.sign(
            self.session,
            order.id,
            actor=crew,
            settings=self.settings,
            code=self.code_for(order.customer_phone),
            signature_image=photos.signature_png(order.customer_id_number),
            device_time=clock.now(),
            lat=order.lat,
            lon=order.lon,
            gps_accuracy_m=8,
        )
        if isinstance(signed, contracts.OtpRejected):
            raise RuntimeError(f"demo order {order.customer_id_number}: {signed.detail}")

    def issue_kit(self, order: WorkOrder, depot_code: str, meter: str) -> None:
        """The storekeeper reserves the scheme's kit and hands it over with this meter."""
        reservation = kits.reserve_for_order(
            self.session, order.id, depot_code=depot_code, actor=self.cast.storekeeper
        )
        self.session.flush()
        kits.issue(
            self.session,
            reservation.id,
            meter_barcode=meter,
            actor=self.cast.storekeeper,
            settings=self.settings,
        )

    def install(self, order: WorkOrder, meter: str) -> None:
        for kind in (MediaKind.meter_box, MediaKind.wiring, MediaKind.seal, MediaKind.meter_before):
            self.photo(order, kind)
            self.later(6)
        self.photo(order, MediaKind.barcode, meter=meter)

    def check(self, order: WorkOrder, phase: str, *, fail: str | None = None) -> bool:
        """Submit one phase of the order's card; ``fail`` names an item read out of limits."""
        gathered = check_evidence.gather(self.session, order)
        card = checklists.card_for(self.session, order, metering=gathered.metering)
        scheme = schemes.accepted_for_order_or_raise(self.session, order.id)
        values = passing_values(card, phase, scheme, seed=f"{order.customer_id_number}/{phase}")
        if fail is not None and fail in values:
            values[fail] = FAILURES[fail]
        row = checklists.submit(
            self.session,
            order.id,
            phase=phase,
            values=values,
            actor=self.crew_of(order),
            device_time=clock.now(),
        )
        self.session.flush()
        return bool(row.passed)

    # -- after energisation ----------------------------------------------------------------

    def call_back(
        self,
        order: WorkOrder,
        *,
        satisfaction: int,
        irregularities: tuple[callback_rules.Irregularity, ...] = (),
        notes: str | None = None,
    ) -> None:
        callbacks.record_result(
            self.session,
            order,
            satisfaction=satisfaction,
            irregularities=irregularities,
            notes=notes,
            actor=self.cast.service,
        )

    def resolve_follow_ups(self, order: WorkOrder, resolution: str) -> None:
        for flag in callbacks.open_follow_ups(self.session, order.id):
            callbacks.resolve_flag(
                self.session, flag.id, resolution=resolution, actor=self.cast.service
            )

    def close(self, order: WorkOrder) -> None:
        orders.transition(self.session, order, Stage.closed, actor=self.cast.service)

    def park(self, order: WorkOrder, reason: str, expected_on: date) -> None:
        orders.transition(
            self.session,
            order,
            Stage.whitelisted,
            actor=self.crew_of(order),
            reason=reason,
            expected_on=expected_on,
        )

    def cancel(self, order: WorkOrder, reason: str) -> None:
        orders.transition(
            self.session, order, Stage.cancelled, actor=self.cast.service, reason=reason
        )
