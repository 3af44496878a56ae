"""Media use cases on a real database: rollback cleanup, deferred analysis, band lookup."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from field_api.common.actors import Principal, Role
from field_api.common.storage import store_of
from field_api.config import MediaSettings, Settings
from field_api.media import service
from field_api.media.models import AnalysisState, MediaHashBand, MediaItem
from field_api.media.rules import MediaKind, phash_bands, to_signed64
from field_api.media.schemas import MediaCreate

from .imaging import BRIGHTON_18, BRIGHTON_25
from .support import Crews

CFG = MediaSettings()


def _actor(session: Session, crews: Crews) -> Principal:
    from field_api.auth.models import User

    user = session.query(User).filter(User.crew_id == crews.crew_a.id).one()
    # an admin may write to both crews' orders
    return Principal(user_id=user.id, name=user.name, role=Role.admin)


def _stage(settings: Settings, source: Path) -> service.StagedFile:
    temp = store_of(settings).new_temp()
    temp.write(source.read_bytes())
    temp.finish()
    return service.StagedFile(temp.path, temp.sha256, temp.size, temp.head)


def _create(
    session: Session, settings: Settings, crews: Crews, source: Path, *, order_id: int | None = None
) -> MediaItem:
    item, created = service.create_item(
        session,
        order_id=order_id or crews.order.id,
        data=MediaCreate(client_id=str(uuid.uuid4()), kind=MediaKind.site),
        staged=_stage(settings, source),
        file_name=None,
        actor=_actor(session, crews),
        settings=settings,
        cfg=CFG,
    )
    assert created
    return item


@pytest.mark.both_stores
def test_new_file_is_removed_when_the_transaction_rolls_back(
    session: Session, settings: Settings, crews: Crews
) -> None:
    item = _create(session, settings, crews, BRIGHTON_18)
    store = store_of(settings)
    assert store.exists(item.sha256)
    session.rollback()
    assert not store.exists(item.sha256)


@pytest.mark.both_stores
def test_committed_file_stays(session: Session, settings: Settings, crews: Crews) -> None:
    item = _create(session, settings, crews, BRIGHTON_18)
    session.commit()
    session.rollback()
    assert store_of(settings).read_bytes(item.sha256) == BRIGHTON_18.read_bytes()


@pytest.mark.both_stores
def test_pending_items_are_analysed_by_process_pending(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    crews: Crews,
) -> None:
    item = _create(session, settings, crews, BRIGHTON_18)
    session.commit()
    assert item.analysis is AnalysisState.pending
    assert service.process_pending(session_factory, settings=settings, cfg=CFG) == 1
    session.expire_all()
    fresh = session.get(MediaItem, item.id)
    assert fresh is not None
    assert fresh.analysis is AnalysisState.done
    assert fresh.phash is not None and fresh.thumbnail_sha256 is not None
    bands = session.query(MediaHashBand).filter(MediaHashBand.media_id == item.id).all()
    assert sorted(b.value for b in bands) == sorted(phash_bands(fresh.phash))
    # idempotent: nothing left to do
    assert service.process_pending(session_factory, settings=settings, cfg=CFG) == 0


def test_band_lookup_finds_near_hashes_on_other_orders_only(
    session: Session, settings: Settings, crews: Crews
) -> None:
    a = _create(session, settings, crews, BRIGHTON_18)
    b = _create(session, settings, crews, BRIGHTON_25, order_id=crews.order_b.id)
    base = 0x0123_4567_89AB_CDEF
    near = base ^ 0x0001_0003_0003_0003  # 7 bits away: one slice within one bit
    far = base ^ 0x0003_0003_0003_0003  # 8 bits away, two per slice: no probe key
    for item, value in ((a, near), (b, far)):
        item.phash = to_signed64(value)
        for band, v in enumerate(phash_bands(value)):
            session.add(MediaHashBand(media_id=item.id, band=band, value=v, order_id=item.order_id))
    session.flush()
    found = {c.item_id for c in service.near_duplicates(session, to_signed64(base))}
    assert found == {str(a.id)}
    excluded = service.near_duplicates(session, to_signed64(base), exclude_order_id=crews.order.id)
    assert excluded == []


def test_checklist_helpers_count_photos_and_find_the_barcode(
    session: Session, settings: Settings, crews: Crews
) -> None:
    _create(session, settings, crews, BRIGHTON_18)
    _create(session, settings, crews, BRIGHTON_25)
    assert service.photo_counts(session, crews.order.id) == {"site": 2}
    assert service.photo_counts(session, crews.order_b.id) == {}
    assert service.latest_barcode(session, crews.order.id) is None
