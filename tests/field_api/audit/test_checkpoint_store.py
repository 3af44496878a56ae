"""Where audit checkpoints are kept: the folder FIELDOPS_AUDIT_CHECKPOINT_DIR on the local storage
backend, the file store's bucket (``<prefix>audit-checkpoints/``) on the s3 backend, so that
several API hosts write and verify the same ones (order 15, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.audit import checkpoints
from field_api.common.actors import Role
from field_api.common.storage import S3Store
from field_api.common.storage import store_of as object_store_of
from field_api.config import Settings
from tests.builders import auth, make_crew, make_user

pytestmark = pytest.mark.both_stores


def _bucket_keys(settings: Settings) -> list[str]:
    store = object_store_of(settings)
    assert isinstance(store, S3Store)
    listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    return sorted(str(o["Key"])[len(store.prefix) :] for o in listed.get("Contents", []))


def _other_host(settings: Settings, tmp_path: Path) -> Settings:
    """A second API host: the same database, keys and storage section; its own folders."""
    return Settings(
        env="test",
        database_url=settings.database_url,
        media_dir=tmp_path / "host-b" / "media",
        token_pepper=settings.token_pepper,
        signing_key_path=settings.signing_key_path,
        audit_checkpoint_dir=tmp_path / "host-b" / "checkpoints",
        storage=settings.storage,
    )


def test_checkpoints_go_to_the_bucket_on_s3_and_to_the_folder_on_local(
    session: Session, settings: Settings, storage_backend: str
) -> None:
    make_crew(session)  # some audited history
    written = checkpoints.write_checkpoint(session, settings)
    store = checkpoints.store_of(settings)
    assert store.names() == [written.name]
    assert store.load(written.name).envelope == written.envelope
    folder = settings.audit_checkpoint_dir
    on_disk = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if storage_backend == "s3":
        assert isinstance(store, checkpoints.BucketCheckpointStore)
        assert on_disk == []
        assert _bucket_keys(settings) == [f"audit-checkpoints/{written.name}"]
        assert store.where.startswith("s3://") and store.where.endswith("/audit-checkpoints/")
    else:
        assert isinstance(store, checkpoints.CheckpointStore)
        assert on_disk == [written.name]
    # checkpoints are never content: the file store does not list them (sweeps, migration)
    assert list(object_store_of(settings).list()) == []


def test_a_checkpoint_name_is_never_written_twice(session: Session, settings: Settings) -> None:
    store = checkpoints.store_of(settings)
    first = checkpoints.write_checkpoint(session, settings)
    envelope = {**first.envelope, "signature": "forged"}
    at = checkpoints.clock.now()
    # the same instant and count: a new name, the first checkpoint untouched
    again = store.write(envelope, at=at)
    same = store.write(envelope, at=at)
    assert again != same and first.name not in (again, same)
    assert store.load(first.name).envelope == first.envelope
    assert len(store.names()) == 3


def test_another_host_sees_and_verifies_the_checkpoints_in_the_bucket(
    session: Session, settings: Settings, storage_backend: str, tmp_path: Path
) -> None:
    make_crew(session)
    written = checkpoints.write_checkpoint(session, settings)
    host_b = _other_host(settings, tmp_path)
    shared = checkpoints.store_of(host_b)
    report = checkpoints.verify_against(session, shared, checkpoints.public_key(settings))
    assert report.problems == []
    if storage_backend == "s3":  # one bucket: host B checks host A's checkpoint
        assert shared.names() == [written.name] and report.checked == 1
    else:  # one folder per host: host B has none of its own
        assert shared.names() == [] and report.checked == 0


def test_the_audit_endpoints_list_and_verify_the_configured_store(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, admin = make_user(session, settings, role=Role.admin)
    session.commit()
    created = client.post("/audit/checkpoints", headers=auth(admin))
    assert created.status_code == 201, created.text
    listed = client.get("/audit/checkpoints", headers=auth(admin)).json()
    assert [i["file"] for i in listed["items"]] == [created.json()["file"]]
    assert checkpoints.store_of(settings).names() == [created.json()["file"]]
    report = client.get("/audit/verify", headers=auth(admin)).json()
    assert report["ok"] and report["checkpoints_checked"] == 1, report
