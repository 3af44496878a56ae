"""The orphan sweep (field_api.storage_sweep) on the local folder and on the S3 server: stored
objects no row references go once older than the grace; referenced and young ones stay."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from field_api import storage_sweep
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.storage import LocalStore, ObjectStore, S3Store, store_of
from field_api.config import MediaSettings, Settings, get_settings
from field_api.db import Base
from field_api.media import service
from field_api.media.models import MediaItem
from field_api.media.rules import MediaKind
from field_api.media.schemas import MediaCreate
from field_api.wiring import import_all_models
from tests.clocks import ChinaClock

from .imaging import BRIGHTON_18
from .support import Crews

GRACE_H = 24.0


def _age(store: ObjectStore, sha: str, hours: float, server_clock: ChinaClock) -> None:
    """Make ``sha`` look ``hours`` old: its file's mtime on the local folder; on S3, whose
    LastModified cannot be set, move the service's clock forward (every object ages)."""
    path = store.local_file(sha)
    if path is not None:
        then = (server_clock.now() - timedelta(hours=hours)).timestamp()
        os.utime(path, (then, then))
    else:
        server_clock.advance(timedelta(hours=hours))


def _sweep(
    session: Session, settings: Settings, *, dry_run: bool = False
) -> storage_sweep.OrphanSweep:
    return storage_sweep.sweep_orphans(
        session, store_of(settings), grace_hours=GRACE_H, dry_run=dry_run
    )


def _committed_item(session: Session, settings: Settings, crews: Crews) -> MediaItem:
    from field_api.auth.models import User

    user = session.query(User).filter(User.crew_id == crews.crew_a.id).one()
    store = store_of(settings)
    temp = store.new_temp()
    temp.write(BRIGHTON_18.read_bytes())
    temp.finish()
    item, _ = service.create_item(
        session,
        order_id=crews.order.id,
        data=MediaCreate(client_id=str(uuid.uuid4()), kind=MediaKind.site),
        staged=service.StagedFile(temp.path, temp.sha256, temp.size, temp.head),
        file_name=None,
        actor=Principal(user_id=user.id, name=user.name, role=Role.admin),
        settings=settings,
        cfg=MediaSettings(),
    )
    session.commit()
    return item


@pytest.mark.both_stores
def test_an_old_unreferenced_object_goes_and_a_referenced_one_stays(
    session: Session, settings: Settings, crews: Crews, server_clock: ChinaClock
) -> None:
    item = _committed_item(session, settings, crews)
    store = store_of(settings)
    orphan = store.put_bytes(b"stored by a process that died before its commit").sha256
    _age(store, orphan, GRACE_H + 1, server_clock)
    _age(store, item.sha256, GRACE_H + 1, server_clock)
    result = _sweep(session, settings)
    assert not store.exists(orphan)
    assert store.exists(item.sha256)
    assert result.orphans == 1 and result.deleted == 1
    assert result.referenced >= 1


@pytest.mark.both_stores
def test_an_unreferenced_object_younger_than_the_grace_stays(
    session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    store = store_of(settings)
    young = store.put_bytes(b"stored a moment ago, its row not committed yet").sha256
    _age(store, young, GRACE_H - 1, server_clock)
    result = _sweep(session, settings)
    assert store.exists(young)
    assert (result.young, result.orphans, result.deleted) == (1, 0, 0)


@pytest.mark.both_stores
def test_a_dry_run_deletes_nothing(
    session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    store = store_of(settings)
    orphan = store.put_bytes(b"an orphan the dry run only counts").sha256
    _age(store, orphan, GRACE_H + 1, server_clock)
    result = _sweep(session, settings, dry_run=True)
    assert store.exists(orphan)
    assert (result.orphans, result.deleted, result.dry_run) == (1, 0, True)
    assert _sweep(session, settings).deleted == 1  # the same sweep for real does delete it
    assert not store.exists(orphan)


@pytest.mark.both_stores
def test_the_evidence_of_a_committed_media_item_is_never_deleted(
    session: Session, settings: Settings, crews: Crews, server_clock: ChinaClock
) -> None:
    item = _committed_item(session, settings, crews)
    store = store_of(settings)
    _age(store, item.sha256, 24 * 365 * 10, server_clock)  # ten years old
    if item.thumbnail_sha256:
        _age(store, item.thumbnail_sha256, 24 * 365 * 10, server_clock)
    result = _sweep(session, settings)
    assert store.read_bytes(item.sha256) == BRIGHTON_18.read_bytes()
    assert result.deleted == 0 and result.referenced >= 1


@pytest.mark.both_stores
def test_keys_that_are_not_content_are_left_alone(
    session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    store = store_of(settings)
    if isinstance(store, LocalStore):
        stray = store.root / "ab" / "notes.txt"
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_text("not content")
        then = (server_clock.now() - timedelta(days=3650)).timestamp()
        os.utime(stray, (then, then))
    else:
        assert isinstance(store, S3Store)
        store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}ab/notes.txt", Body=b"x")
        server_clock.advance(timedelta(days=3650))
    result = _sweep(session, settings)
    assert (result.listed, result.deleted) == (0, 0)
    assert [info.key for info in store.list()] == ["ab/notes.txt"]


def test_the_maintenance_job_and_the_command_sweep(
    session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    from field_api import maintenance
    from field_api.wiring import job_handlers, periodic_jobs

    assert "storage.sweep_orphans" in [p.kind for p in periodic_jobs(settings)]
    assert "storage.sweep_orphans" in job_handlers()
    store = store_of(settings)
    orphan = store.put_bytes(b"left by a crash").sha256
    _age(store, orphan, GRACE_H + 1, server_clock)
    assert _sweep(session, settings, dry_run=True).orphans == 1
    assert maintenance.sweep_orphans(maintenance.JobContext.of(_factory_of(session), settings)) == 1
    assert not store.exists(orphan)


def _factory_of(session: Session) -> sessionmaker[Session]:
    return sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")


def test_every_sha256_column_is_classified() -> None:
    """A model that gains a ``*sha256*`` column fails here until the sweep's list says whether
    it names a stored object (storage_sweep.stored_columns) or not (NOT_STORED, with why)."""
    import_all_models()
    digest_columns = {
        f"{table.name}.{col.name}"
        for table in Base.metadata.tables.values()
        for col in table.columns
        if "sha256" in col.name
    }
    stored = {f"{col.table.name}.{col.name}" for col in storage_sweep.stored_columns()}
    assert stored == set(storage_sweep.STORED)
    not_stored = set(storage_sweep.NOT_STORED)
    assert not stored & not_stored
    assert all(storage_sweep.NOT_STORED.values()) and all(storage_sweep.STORED.values())
    unclassified = digest_columns - stored - not_stored
    assert not unclassified, f"classify these in field_api/storage_sweep.py: {unclassified}"
    assert not_stored <= digest_columns  # no stale entries
    assert stored - digest_columns == {"inspection_photos.id"}  # the photo's id is its sha256


def test_the_command_counts_then_deletes(
    committed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from field_api.cli.storage import app

    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("FIELDOPS_STORAGE_BACKEND", "local")
    monkeypatch.setenv("FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS", "2")
    get_settings.cache_clear()
    try:
        store = LocalStore(tmp_path / "media")
        orphan = store.put_bytes(b"left by a crash, found by the command").sha256
        then = (clock.now() - timedelta(hours=3)).timestamp()
        os.utime(store.path_of(orphan), (then, then))
        dry = CliRunner().invoke(app, ["sweep-orphans", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.stdout.strip().splitlines()[-1])["orphans"] == 1
        assert store.exists(orphan)
        real = CliRunner().invoke(app, ["sweep-orphans"])
        assert real.exit_code == 0, real.output
        assert json.loads(real.stdout.strip().splitlines()[-1])["deleted"] == 1
        assert not store.exists(orphan)
    finally:
        get_settings.cache_clear()
