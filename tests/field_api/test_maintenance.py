"""The maintenance runner: explicit jobs, each under its own lease, a thread that stops."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api import maintenance
from field_api.auth.models import User
from field_api.common import owners
from field_api.common.actors import Principal, Role
from field_api.common.storage import MediaStore, temp_name
from field_api.config import MediaSettings, Settings
from field_api.leases import service as leases
from field_api.main import create_app
from field_api.media import service as media
from field_api.media.models import AnalysisState, MediaItem, ResumableUpload
from field_api.media.rules import MediaKind
from field_api.media.schemas import MediaCreate
from tests.clocks import ChinaClock
from tests.field_api.media.imaging import BRIGHTON_18
from tests.field_api.media.support import Crews, create_photo

REMOTE = "elsewhere.example/4242/777"
PERIOD_S = 60.0


def test_the_runner_is_off_in_tests_and_on_elsewhere() -> None:
    assert Settings(env="test").maintenance_every_s == 0
    assert Settings(env="development").maintenance_every_s == 60
    assert Settings(env="test", maintenance_interval_s=5).maintenance_every_s == 5
    assert Settings(env="development", maintenance_interval_s=0).maintenance_every_s == 0


def test_the_job_list_is_explicit() -> None:
    settings = Settings(env="test")
    housekeeping = [
        "media.sweep_temp",
        "media.expire_uploads",
        "media.sweep_uploads",
        "storage.sweep_orphans",
        "idempotency.purge",
        "leases.purge",
        "audit.checkpoint",
    ]
    assert [j.name for j in maintenance.jobs(settings, analyse=False)] == housekeeping
    with_analysis = maintenance.jobs(settings, analyse=True)
    assert [j.name for j in with_analysis] == ["media.analyse_pending", *housekeeping]
    # these claim their own items (each photo; the chain's head) instead of a job-wide lease
    assert not with_analysis[0].exclusive and not with_analysis[-1].exclusive
    assert all(j.exclusive for j in with_analysis[1:-1])


class _Counting:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, ctx: maintenance.JobContext) -> int:
        self.runs += 1
        return 7


def _holder(factory: sessionmaker[Session], kind: str) -> str | None:
    with factory() as s:
        row = leases.holder(s, kind, maintenance.JOB_KEY)
        return None if row is None else row.owner


def test_one_process_at_a_time_runs_a_job_once_per_period(
    session_factory: sessionmaker[Session], settings: Settings, server_clock: ChinaClock
) -> None:
    ctx = maintenance.JobContext.of(session_factory, settings)
    body = _Counting()
    job = maintenance.Job("test.job", body)
    a, b = maintenance.job_owner("a"), maintenance.job_owner("b")
    with session_factory.begin() as s:
        assert leases.claim(s, job.name, maintenance.JOB_KEY, ttl_s=60, owner=REMOTE)

    assert maintenance.run_job(job, ctx, owner=a, period_s=PERIOD_S) is None  # a live holder
    server_clock.advance(seconds=60)
    assert maintenance.run_job(job, ctx, owner=a, period_s=PERIOD_S) == 7  # expired: taken
    assert _holder(session_factory, job.name) == a  # kept until it is due again
    assert maintenance.run_job(job, ctx, owner=a, period_s=PERIOD_S) is None  # not due
    assert maintenance.run_job(job, ctx, owner=b, period_s=PERIOD_S) is None  # a holds it
    server_clock.advance(seconds=PERIOD_S)
    assert maintenance.run_job(job, ctx, owner=b, period_s=PERIOD_S) == 7
    assert body.runs == 2


def test_a_dead_holders_job_runs_at_once_and_a_failure_releases_it(
    session_factory: sessionmaker[Session], settings: Settings, server_clock: ChinaClock
) -> None:
    ctx = maintenance.JobContext.of(session_factory, settings)
    body = _Counting()
    job = maintenance.Job("test.job", body)
    with session_factory.begin() as s:
        dead = f"{owners.host()}/999999/1#maintenance-0"
        assert leases.claim(s, job.name, maintenance.JOB_KEY, ttl_s=3600, owner=dead)
    assert maintenance.run_job(job, ctx) == 7

    def broken(_: maintenance.JobContext) -> int:
        raise RuntimeError("disk on fire")

    failing = maintenance.Job("test.failing", broken)
    results = maintenance.run_pass(ctx, [failing, maintenance.Job("test.after", body)])
    assert results == {"test.failing": None, "test.after": 7}
    assert _holder(session_factory, "test.failing") is None  # another process may try


def test_one_pass_puts_a_crash_right(
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

    here = settings.model_copy(update={"audit_checkpoint_dir": tmp_path / "checkpoints"})
    ctx = maintenance.JobContext.of(session_factory, here, media_cfg=cfg)
    results = maintenance.run_pass(ctx, maintenance.jobs(here, analyse=True))
    assert results == {
        "media.analyse_pending": 1,
        "media.sweep_temp": 1,
        "media.expire_uploads": 1,
        "media.sweep_uploads": 0,  # expiry dropped the upload's bytes with its row
        "storage.sweep_orphans": 0,  # the photo's file is referenced by its committed row
        "idempotency.purge": 0,
        "leases.purge": 1,
        "audit.checkpoint": results["audit.checkpoint"],  # the lead's job; ran without error
    }
    assert results["audit.checkpoint"] is not None
    session.expire_all()
    done = session.get(MediaItem, photo.id)
    assert done is not None and done.analysis is AnalysisState.done
    assert not crashed.exists()
    assert session.get(ResumableUpload, upload_id) is None
    assert leases.holder(session, "test.other", "x") is None


def test_the_runner_starts_with_the_app_and_stops_with_it(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    on = settings.model_copy(
        update={"maintenance_interval_s": 3600.0, "audit_checkpoint_dir": tmp_path / "cp"}
    )
    app = create_app(on, session_factory=session_factory)
    with TestClient(app) as client:
        runner = app.state.maintenance
        assert isinstance(runner, maintenance.MaintenanceRunner)
        assert runner.first_pass_done.wait(timeout=30)  # the start-up pass
        assert runner.running
        assert client.get("/healthz").status_code == 200
    assert not runner.running
    assert not [t for t in threading.enumerate() if t.name == "fieldops-maintenance"]


def test_no_runner_without_a_period(client: TestClient) -> None:
    assert client.app.state.maintenance is None  # type: ignore[attr-defined]


def test_a_runner_needs_a_positive_period(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with pytest.raises(ValueError, match="positive period"):
        maintenance.MaintenanceRunner(session_factory, settings, every_s=0)
