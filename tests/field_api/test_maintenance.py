"""The housekeeping jobs: an explicit list, run by the job workers, that put a crash right."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api import workers
from field_api.auth.models import User
from field_api.common import owners
from field_api.common.actors import Principal, Role
from field_api.common.storage import MediaStore, temp_name
from field_api.config import MediaSettings, Settings
from field_api.leases import service as leases
from field_api.media import service as media
from field_api.media.models import AnalysisState, MediaItem, ResumableUpload
from field_api.media.rules import MediaKind
from field_api.media.schemas import MediaCreate
from field_api.wiring import job_handlers, periodic_jobs
from tests.clocks import ChinaClock
from tests.field_api.media.imaging import BRIGHTON_18
from tests.field_api.media.support import Crews, create_photo

REMOTE = "elsewhere.example/4242/777"


def test_the_housekeeping_period_is_a_minute_unless_set() -> None:
    assert Settings(env="test").maintenance_every_s == 60
    assert Settings(env="development", maintenance_interval_s=5).maintenance_every_s == 5
    with pytest.raises(ValueError):
        Settings(env="test", maintenance_interval_s=0)


def test_the_periodic_job_list_is_explicit() -> None:
    settings = Settings(env="test", maintenance_interval_s=30)
    housekeeping = [
        "media.sweep_temp",
        "media.expire_uploads",
        "media.sweep_uploads",
        "storage.sweep_orphans",
        "idempotency.purge",
        "leases.purge",
        "audit.checkpoint",
        "jobs.purge",
        "reliability.snapshot",
    ]
    on_maintenance = [p for p in periodic_jobs(settings) if p.queue == "maintenance"]
    assert [p.kind for p in on_maintenance] == housekeeping
    assert {p.period_s for p in on_maintenance if p.kind != "reliability.snapshot"} == {30}
    snapshot = next(p for p in on_maintenance if p.kind == "reliability.snapshot")
    assert snapshot.period_s == settings.reliability.snapshot_every_s
    assert set(housekeeping) <= set(job_handlers())


def test_a_worker_that_starts_puts_a_crash_right_at_once(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    server_clock: ChinaClock,
    tmp_path: Path,
) -> None:
    cfg = MediaSettings()
    crews = Crews(session, settings)
    photo = create_photo(session, settings, crews, BRIGHTON_18)
    user = session.execute(select(User).where(User.crew_id == crews.crew_a.id)).scalar_one()
    upload = media.create_upload(
        session,
        order_id=crews.order.id,
        data=MediaCreate(client_id=str(uuid.uuid4()), kind=MediaKind.wiring),
        length=1000,
        file_name=None,
        actor=Principal(user_id=user.id, name=user.name, role=Role.admin),
        settings=settings,
        cfg=cfg,
    )
    upload_id = upload.id
    assert leases.claim(session, "test.other", "x", ttl_s=60, owner=REMOTE)
    session.commit()
    store = MediaStore(settings.media_dir)
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    crashed = store.tmp_dir / temp_name(f"{owners.host()}/999999/1")
    crashed.write_bytes(b"\xff\xd8 half a photo")
    server_clock.advance(hours=cfg.tus_expiry_hours + 2)

    here = settings.model_copy(
        update={"audit_checkpoint_dir": tmp_path / "checkpoints", "media": cfg}
    )
    config = workers.config_of(
        here, periodic_jobs(here), queues=["media", "maintenance"], tag="restart"
    )
    worker = workers.make_worker(session_factory, here, config, job_handlers())
    worker.schedule()  # a worker that starts finds every periodic job due now
    # the analysis pass, the 8 housekeeping jobs and the register snapshot
    assert worker.run_until_idle() == 10
    session.expire_all()
    done = session.get(MediaItem, photo.id)
    assert done is not None and done.analysis is AnalysisState.done
    assert not crashed.exists()
    assert session.get(ResumableUpload, upload_id) is None
    assert leases.holder(session, "test.other", "x") is None
