"""`fieldops storage migrate --to s3`: a local store copied into the bucket, resumable and
verified by sha256 (against the S3 server of tests/s3server.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from field_api.cli.storage import app
from field_api.common.storage import LocalStore, S3Store, build_store, store_of
from field_api.config import Settings, StorageSettings, get_settings
from tests import s3server

runner = CliRunner()


@pytest.fixture
def depot(
    tmp_path: Path, s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalStore, S3Store]]:
    """A local store with three files, and the bucket the command is configured for (a prefix
    of this test's own; the backend still local, as before a migration)."""
    local = LocalStore(tmp_path / "media")
    for i in range(3):
        local.put_bytes(f"photo {i}".encode() * 1000)
    local.put_bytes(b"")  # an empty file is content too
    prefix = f"migrate-{tmp_path.name[-12:]}/"
    env = {
        "FIELDOPS_MEDIA_DIR": str(local.root),
        "FIELDOPS_STORAGE_BACKEND": "local",
        "FIELDOPS_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "FIELDOPS_S3_BUCKET": s3_server.bucket,
        "FIELDOPS_S3_ACCESS_KEY_ID": s3_server.access_key,
        "FIELDOPS_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "FIELDOPS_S3_PREFIX": prefix,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    bucket = build_store(StorageSettings(**s3_server.settings(prefix)), tmp_path / "staging")
    assert isinstance(bucket, S3Store)
    yield local, bucket
    get_settings.cache_clear()


def _run() -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["migrate", "--to", "s3"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_every_object_is_copied_then_found_present_on_a_second_run(
    depot: tuple[LocalStore, S3Store],
) -> None:
    local, bucket = depot
    code, report = _run()
    assert (code, report) == (0, {"copied": 4, "present": 0, "failed": []})
    assert {o.key for o in bucket.list()} == {o.key for o in local.list()}
    for obj in local.list():
        sha = obj.key.rsplit("/", 1)[1]
        assert hashlib.sha256(bucket.read_bytes(sha)).hexdigest() == sha
    assert _run() == (0, {"copied": 0, "present": 4, "failed": []})  # nothing copied twice
    assert list(local.list())  # the local store is left as it was


def test_a_run_cut_short_is_resumed(depot: tuple[LocalStore, S3Store]) -> None:
    local, bucket = depot
    first = next(iter(local.list())).key.rsplit("/", 1)[1]
    bucket.put_bytes(local.read_bytes(first))  # an earlier run copied one object, then stopped
    assert _run() == (0, {"copied": 3, "present": 1, "failed": []})


def test_a_damaged_file_is_reported_and_not_copied(
    depot: tuple[LocalStore, S3Store],
) -> None:
    local, bucket = depot
    damaged = local.put_bytes(b"a signed contract")
    assert damaged.path is not None
    damaged.path.chmod(0o600)
    damaged.path.write_bytes(b"a signed contrac7")
    code, report = _run()
    assert code == 1
    assert report["copied"] == 4
    assert report["failed"] == [
        {"key": damaged.key, "reason": "the source does not hash to its key"}
    ]
    assert not bucket.exists(damaged.sha256)


def test_a_bad_copy_in_the_bucket_is_refused_and_removed(
    depot: tuple[LocalStore, S3Store],
) -> None:
    local, bucket = depot
    sha = next(iter(local.list())).key.rsplit("/", 1)[1]
    size = local.size(sha)
    assert size is not None
    bucket.client.put_object(  # same size, other bytes: not found out by the size
        Bucket=bucket.bucket, Key=bucket.object_key(sha), Body=b"x" * size
    )
    code, report = _run()
    assert code == 1 and report["failed"] == [
        {"key": f"{sha[:2]}/{sha}", "reason": "the copy does not hash to its key"}
    ]
    assert not bucket.exists(sha)
    assert _run() == (0, {"copied": 1, "present": 3, "failed": []})  # the next run copies it


def test_without_the_bucket_settings_nothing_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path))
    for name in ("FIELDOPS_S3_BUCKET", "FIELDOPS_S3_ACCESS_KEY_ID", "FIELDOPS_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["migrate", "--to", "s3"])
        assert result.exit_code == 2
        assert "FIELDOPS_S3_BUCKET" in result.stderr
        assert runner.invoke(app, ["migrate", "--to", "gcs"]).exit_code == 2
    finally:
        get_settings.cache_clear()
    assert store_of(Settings(env="test", media_dir=tmp_path)).backend == "local"
