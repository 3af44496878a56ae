"""The storage interface on both backends: the media folder and a real S3 server (SeaweedFS on
loopback, tests/s3server.py). The same tests run on each (marker ``both_stores``)."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from field_api.common import clock
from field_api.common.storage import (
    LocalStore,
    ObjectStore,
    S3Store,
    build_store,
    key_of,
    store_of,
)
from field_api.config import Settings, StorageSettings
from field_api.errors import ServiceUnavailable
from tests import s3server
from tests.sms_support import production_sms


@pytest.fixture
def store(tmp_path: Path, storage_settings: StorageSettings) -> ObjectStore:
    return build_store(storage_settings, tmp_path / "media")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.both_stores
def test_content_is_stored_once_under_its_digest_and_read_back(
    store: ObjectStore, storage_backend: str
) -> None:
    data = b"a photo of a meter" * 100
    first = store.put_bytes(data)
    again = store.put_bytes(data)
    assert (first.sha256, first.created, again.created) == (_sha(data), True, False)
    assert first.key == f"{first.sha256[:2]}/{first.sha256}"
    assert store.backend == storage_backend
    assert store.exists(first.sha256)
    assert store.size(first.sha256) == len(data)
    assert store.read_bytes(first.sha256) == data
    assert store.read_verified(first.sha256) == data
    assert store.head(first.sha256, 7) == b"a photo"
    assert list(store.tmp_dir.iterdir()) == []  # the temporary file went in (or away)


@pytest.mark.both_stores
def test_reads_stream_in_chunks(store: ObjectStore) -> None:
    data = os.urandom(10_000)
    blob = store.put_bytes(data)
    chunks = list(store.chunks(blob.sha256, chunk_bytes=4096))
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert b"".join(chunks) == data


@pytest.mark.both_stores
def test_a_large_file_goes_in_whole(store: ObjectStore, tmp_path: Path) -> None:
    # Over boto3's multipart threshold (8 MiB): uploaded in parts, read back byte for byte.
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(9 * 1024 * 1024 + 17))
    blob = store.put_file(source)
    assert blob.created and source.exists()  # the source is left as it is
    assert store.size(blob.sha256) == source.stat().st_size
    digest = hashlib.sha256()
    for chunk in store.chunks(blob.sha256):
        digest.update(chunk)
    assert digest.hexdigest() == blob.sha256 == _sha(source.read_bytes())


@pytest.mark.both_stores
def test_missing_content_is_no_error_to_ask_about_and_a_file_not_found_to_read(
    store: ObjectStore,
) -> None:
    sha = _sha(b"never stored")
    assert not store.exists(sha)
    assert store.size(sha) is None
    with pytest.raises(FileNotFoundError):
        store.read_bytes(sha)
    with pytest.raises(FileNotFoundError), store.local_copy(sha):
        pass
    store.remove(sha)  # nothing to remove: no error


@pytest.mark.both_stores
def test_remove_deletes_the_content(store: ObjectStore) -> None:
    blob = store.put_bytes(b"a contract that never got signed")
    store.remove(blob.sha256)
    assert not store.exists(blob.sha256)
    with pytest.raises(FileNotFoundError):
        store.read_bytes(blob.sha256)


@pytest.mark.both_stores
def test_keys_are_listed_with_size_and_time_under_a_prefix(store: ObjectStore) -> None:
    before = clock.now() - timedelta(minutes=1)
    blobs = [store.put_bytes(f"photo {i}".encode()) for i in range(5)]
    store.new_temp().discard()  # staging folders are never listed as content
    listed = {o.key: o for o in store.list()}
    assert set(listed) == {b.key for b in blobs}
    for b in blobs:
        assert listed[b.key].size_bytes == b.size_bytes
        assert before <= listed[b.key].modified <= clock.now() + timedelta(minutes=1)
    first = blobs[0].sha256[:2]
    assert {o.key for o in store.list(f"{first}/")} == {
        b.key for b in blobs if b.sha256.startswith(first)
    }


@pytest.mark.both_stores
def test_a_local_copy_holds_the_content_while_the_block_runs(store: ObjectStore) -> None:
    blob = store.put_bytes(b"\x89PNG a signature")
    with store.local_copy(blob.sha256) as path:
        assert path.read_bytes() == b"\x89PNG a signature"
    if isinstance(store, LocalStore):
        assert path == store.path_of(blob.sha256) and path.exists()  # the stored file itself
    else:
        assert not path.exists()  # a download, removed afterwards
    assert store.exists(blob.sha256)


@pytest.mark.both_stores
def test_keys_are_refused_unless_a_sha256(store: ObjectStore) -> None:
    for bad in ("../../etc/passwd", "AB" * 32, "a" * 63):
        with pytest.raises(ValueError, match="not a sha256"):
            key_of(bad)
        with pytest.raises(ValueError, match="not a sha256"):
            store.exists(bad)


@pytest.mark.both_stores
def test_the_store_of_a_settings_value_is_built_once(
    tmp_path: Path, storage_settings: StorageSettings
) -> None:
    settings = Settings(env="test", media_dir=tmp_path / "media", storage=storage_settings)
    assert store_of(settings) is store_of(settings)
    other = settings.model_copy(update={"media_dir": tmp_path / "elsewhere"})
    assert store_of(other) is not store_of(settings)
    assert store_of(other).staging == tmp_path / "elsewhere"


# --- settings and failures (each on the backend it names) -----------------------------


def test_the_backend_and_bucket_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "FIELDOPS_STORAGE_BACKEND": "s3",
        "FIELDOPS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "FIELDOPS_S3_BUCKET": "depot-files",
        "FIELDOPS_S3_REGION": "cn-north-1",
        "FIELDOPS_S3_ACCESS_KEY_ID": "AKEXAMPLE",
        "FIELDOPS_S3_SECRET_ACCESS_KEY": "very-secret-value",
        "FIELDOPS_S3_PATH_STYLE": "false",
        "FIELDOPS_S3_PREFIX": "city-a/",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(env="test", media_dir=tmp_path)
    cfg = settings.storage
    assert (cfg.backend, cfg.endpoint_url, cfg.bucket, cfg.region) == (
        "s3", "http://127.0.0.1:9", "depot-files", "cn-north-1",
    )  # fmt: skip
    assert (cfg.access_key_id, cfg.path_style, cfg.prefix) == ("AKEXAMPLE", False, "city-a/")
    store = store_of(settings)
    assert isinstance(store, S3Store)
    assert store.client.meta.region_name == "cn-north-1"
    assert "very-secret-value" not in repr(settings) + repr(store) + str(settings.model_dump())


def test_production_refuses_an_s3_backend_with_missing_settings(tmp_path: Path) -> None:
    prod = {
        "env": "production",
        "database_url": "postgresql+psycopg://fieldops@db/fieldops",
        "token_pepper": "a-production-pepper-of-length",
        "public_base_url": "https://connect.example.com",
        "sms": production_sms(tmp_path),
    }
    with pytest.raises(ValidationError) as refused:
        Settings(**prod, storage=StorageSettings(
            backend="s3", bucket="depot-files", secret_access_key="very-secret-value"
        ))  # fmt: skip
    message = str(refused.value)
    assert "FIELDOPS_S3_ACCESS_KEY_ID is not set" in message
    assert "FIELDOPS_S3_BUCKET" not in message and "very-secret-value" not in message
    ok = StorageSettings(
        backend="s3", bucket="depot-files", access_key_id="AK", secret_access_key="s"
    )
    assert Settings(**prod, storage=ok).storage.bucket == "depot-files"
    with pytest.raises(ValueError, match="FIELDOPS_S3_BUCKET"):
        build_store(StorageSettings(backend="s3"), tmp_path)  # development: refused when built


def test_refused_credentials_are_a_503_that_shows_no_secret(
    s3_server: s3server.S3Server, tmp_path: Path
) -> None:
    cfg = StorageSettings(**{**s3_server.settings(), "secret_access_key": "a-wrong-secret-42"})
    store = build_store(cfg, tmp_path)
    with pytest.raises(ServiceUnavailable) as refused:
        store.put_bytes(b"evidence")
    assert refused.value.code == "storage.unavailable"
    shown = f"{refused.value} {refused.value.params} {refused.value.__cause__}"
    assert "a-wrong-secret-42" not in shown and s3_server.secret_key not in shown
    assert list(store.tmp_dir.iterdir()) == []  # the temporary file went away


def test_an_unreachable_store_is_a_503(tmp_path: Path) -> None:
    port = s3server.free_base_ports(1)[0]  # nothing listens there
    cfg = StorageSettings(
        backend="s3", endpoint_url=f"http://127.0.0.1:{port}", bucket="depot-files",
        access_key_id="AK", secret_access_key="very-secret-value",
    )  # fmt: skip
    with pytest.raises(ServiceUnavailable, match="unreachable") as down:
        build_store(cfg, tmp_path).exists(_sha(b"x"))
    assert down.value.code == "storage.unavailable"


@pytest.mark.both_stores
def test_readiness_probes_the_configured_store(
    tmp_path: Path, storage_settings: StorageSettings
) -> None:
    from field_api.readiness import probe_store

    settings = Settings(env="test", media_dir=tmp_path / "media", storage=storage_settings)
    probe_store(settings)  # a write, a read back and a delete, in the bucket too
    assert list(store_of(settings).list()) == []  # the probe left nothing


def test_readiness_fails_when_the_bucket_refuses(
    s3_server: s3server.S3Server, tmp_path: Path
) -> None:
    from field_api.readiness import probe_store

    cfg = StorageSettings(**{**s3_server.settings(), "secret_access_key": "a-wrong-secret-42"})
    with pytest.raises(ServiceUnavailable):
        probe_store(Settings(env="test", media_dir=tmp_path, storage=cfg))
