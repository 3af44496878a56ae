"""The service's workers: the API process's own worker thread in development, the periodic
work every worker schedules, the deferred photo analysis as a job, the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api import workers
from field_api.config import MediaSettings, Settings
from field_api.db import make_engine, make_session_factory
from field_api.deps import DbSession
from field_api.errors import Conflict
from field_api.jobs import service as jobs
from field_api.jobs.models import Job
from field_api.jobs.service import periodic_key
from field_api.jobs.worker import Worker
from field_api.main import create_app
from field_api.maintenance import JobContext
from field_api.media.models import AnalysisState, MediaItem
from field_api.wiring import job_handlers, periodic_jobs
from tests.clocks import ChinaClock
from tests.field_api.media.imaging import BRIGHTON_25
from tests.field_api.media.support import Crews, create_photo

REPO = Path(__file__).resolve().parents[3]


def _worker(factory: sessionmaker[Session], settings: Settings, queue: str) -> Worker[JobContext]:
    config = workers.config_of(settings, periodic_jobs(settings), queues=[queue])
    return workers.make_worker(factory, settings, config, job_handlers())


def test_the_api_runs_a_worker_thread_in_development_only() -> None:
    assert Settings(env="development").runs_worker_in_process
    assert not Settings(env="development", worker_in_process=False).runs_worker_in_process
    assert not Settings(env="test").runs_worker_in_process
    assert Settings(env="test", worker_in_process=True).runs_worker_in_process


def test_every_periodic_job_has_a_handler() -> None:
    kinds = {p.kind for p in periodic_jobs(Settings(env="test"))}
    assert kinds <= set(job_handlers())
    assert {"media.analyse_pending", "webhooks.send", "idempotency.purge", "media.sweep_temp",
            "media.expire_uploads", "media.sweep_uploads", "storage.sweep_orphans"} <= kinds  # fmt: skip


def test_the_worker_thread_starts_with_the_app_and_stops_with_it(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    on = settings.model_copy(
        update={"worker_in_process": True, "audit_checkpoint_dir": tmp_path / "cp"}
    )
    app = create_app(on, session_factory=session_factory)
    with TestClient(app) as client:
        worker = app.state.worker
        assert worker is not None and worker.running
        assert client.get("/healthz").status_code == 200
    assert not worker.running


def test_no_worker_thread_in_tests(client: TestClient) -> None:
    assert client.app.state.worker is None  # type: ignore[attr-defined]


def test_a_photo_left_pending_is_analysed_by_a_worker(
    committed_url: str, tmp_path: Path, server_clock: ChinaClock
) -> None:
    cfg = MediaSettings(analyse_in_process=False)
    settings = Settings(
        env="test",
        database_url=committed_url,
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "cp",
        media=cfg,
    )
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    worker = _worker(factory, settings, "media")
    worker.schedule()
    worker.run_until_idle()  # the analysis pass ran once; due again in 2 s
    with factory() as session:
        crews = Crews(session, settings)
        item = create_photo(session, settings, crews, BRIGHTON_25, cfg=cfg)
        session.commit()
        media_id = item.id
        job = session.execute(
            select(Job).where(Job.dedupe_key == periodic_key("media.analyse_pending"))
        ).scalar_one()
        assert job.run_after <= server_clock()  # the upload woke it
    assert worker.run_until_idle() == 1
    with factory() as session:
        done = session.get(MediaItem, media_id)
        assert done is not None and done.analysis is AnalysisState.done
        assert done.thumbnail_sha256 is not None
    engine.dispose()


def test_the_worker_command_runs_the_due_jobs_once(committed_url: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "FIELDOPS_ENV": "test",
        "FIELDOPS_DATABASE_URL": committed_url,
        "FIELDOPS_MEDIA_DIR": str(tmp_path / "media"),
        "FIELDOPS_AUDIT_KEY_PATH": str(tmp_path / "k" / "chain.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(tmp_path / "k" / "cp.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(tmp_path / "cp"),
    }
    cmd = [sys.executable, "-m", "fieldops.cli"]
    done = subprocess.run(
        [*cmd, "worker", "--queues", "maintenance", "--once"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the maintenance queue's periodic jobs, each due once: sweep_temp, expire_uploads,
    # sweep_uploads, sweep_orphans, idempotency.purge, leases.purge, audit.checkpoint, jobs.purge,
    # reliability.snapshot
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ran": 9}
    alias = subprocess.run(
        [*cmd, "media", "worker", "--once"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert alias.returncode == 0, alias.stderr
    assert "deprecated" in alias.stderr and "fieldops worker" in alias.stderr
    assert json.loads(alias.stdout.strip().splitlines()[-1]) == {"ran": 1}  # media only now
    bad = subprocess.run(
        [*cmd, "worker", "--queues", "media,,x", "--once"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "queue names" in bad.stderr


def test_a_rolled_back_request_enqueues_nothing_and_a_committed_one_does(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    app = create_app(settings, session_factory=session_factory)

    @app.post("/test-only/enqueue")
    def enqueue_then(session: DbSession, fail: bool = False) -> dict[str, int]:
        job_id = jobs.enqueue(session, "probe.effect", {"n": 1})
        if fail:
            raise Conflict("the change failed after enqueueing its job")
        return {"id": job_id}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/test-only/enqueue?fail=true").status_code == 409
        with session_factory() as session:
            assert session.execute(select(Job)).scalars().all() == []
        r = client.post("/test-only/enqueue")
        assert r.status_code == 200
    with session_factory() as session:
        [job] = session.execute(select(Job)).scalars().all()
        assert job.id == r.json()["id"] and job.state == "pending"
