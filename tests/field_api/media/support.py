"""Shared builders of the media tests: two crews with orders, and store inspection."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.auth.models import Crew, User
from field_api.common.actors import Principal, Role
from field_api.common.storage import LocalStore, store_of
from field_api.config import MediaSettings, Settings
from field_api.media import service
from field_api.media.models import MediaItem
from field_api.media.rules import MediaKind
from field_api.media.schemas import MediaCreate
from field_api.work_orders.models import WorkOrder
from tests.builders import make_crew, make_order, make_user

BRIGHTON_POS = {"lat": 46.842607, "lon": -91.994560}  # where DJI_0018 was taken


class Crews:
    """Two crews, a planner, and an order of crew A at the fixture photo's position."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.crew_a: Crew = make_crew(session)
        self.crew_b: Crew = make_crew(session)
        self.order: WorkOrder = make_order(session, crew=self.crew_a, **BRIGHTON_POS)
        self.order_b: WorkOrder = make_order(session, crew=self.crew_b, **BRIGHTON_POS)
        _, self.token_a = make_user(session, settings, role=Role.crew, crew=self.crew_a)
        _, self.token_b = make_user(session, settings, role=Role.crew, crew=self.crew_b)
        _, self.planner = make_user(session, settings, role=Role.planner)
        session.commit()


def stored_files(settings: Settings) -> list[Path]:
    """Every file kept: under the media folder (stored content on the local backend, and the
    temporary and tus files on both) and, on the s3 backend, the objects (their keys)."""
    root = settings.media_dir
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    store = store_of(settings)
    if isinstance(store, LocalStore):
        return files
    return files + [Path(o.key) for o in store.list()]


def stored_bytes(settings: Settings, sha256: str) -> bytes:
    """The content stored under ``sha256`` (either backend)."""
    return store_of(settings).read_bytes(sha256)


def damage_stored(settings: Settings, sha256: str, data: bytes) -> None:
    """Overwrite stored content in place (a failing disk, a copy interrupted)."""
    store = store_of(settings)
    if isinstance(store, LocalStore):
        path = store.path_of(sha256)
        path.chmod(0o600)
        path.write_bytes(data)
    else:
        store.client.put_object(Bucket=store.bucket, Key=store.object_key(sha256), Body=data)


def item_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(MediaItem)).scalar_one())


def create_photo(
    session: Session,
    settings: Settings,
    crews: Crews,
    source: Path,
    *,
    order_id: int | None = None,
    kind: MediaKind = MediaKind.site,
    cfg: MediaSettings | None = None,
) -> MediaItem:
    """Record a photo through the service (as an admin), its analysis left pending."""
    temp = store_of(settings).new_temp()
    temp.write(source.read_bytes())
    temp.finish()
    user = session.execute(select(User).where(User.crew_id == crews.crew_a.id)).scalar_one()
    item, created = service.create_item(
        session,
        order_id=order_id or crews.order.id,
        data=MediaCreate(client_id=str(uuid.uuid4()), kind=kind),
        staged=service.StagedFile(temp.path, temp.sha256, temp.size, temp.head),
        file_name=None,
        actor=Principal(user_id=user.id, name=user.name, role=Role.admin),
        settings=settings,
        cfg=cfg or MediaSettings(),
    )
    assert created
    return item
