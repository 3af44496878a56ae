"""tus uploads kept in a bucket (S3 multipart with a spool object, field_api.common.uploads):
chunks far smaller than an S3 part, a second API host finishing what the first began, and a
worker dying between a part and its spool."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from field_api.common.storage import S3Store, store_of
from field_api.common.uploads import PART_BYTES
from field_api.config import Settings
from field_api.main import create_app
from tests.builders import auth

from .imaging import mp4_bytes
from .support import Crews
from .test_tus import _create, _offset, _patch

MIB = 1024 * 1024
pytestmark = pytest.mark.parametrize("storage_backend", ["s3"], indirect=True)


def _upload_keys(store: S3Store) -> dict[str, int]:
    listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}uploads/")
    return {o["Key"].rsplit("/", 1)[1]: o["Size"] for o in listed.get("Contents", [])}


def _send(client: TestClient, url: str, token: str, data: bytes, start: int, stop: int) -> int:
    """PATCH ``data[start:stop]`` in 700 kB chunks (much smaller than a part, not aligned to
    one); the last response's Content-Location, if the upload completed, else ""."""
    offset, step, location = start, 700_000, ""
    while offset < stop:
        chunk = data[offset : min(offset + step, stop)]
        r = _patch(client, url, token, offset, chunk)
        assert r.status_code == 204, r.text  # type: ignore[attr-defined]
        offset += len(chunk)
        location = r.headers.get("content-location", "")  # type: ignore[attr-defined]
    return location


def test_an_upload_begun_on_one_host_is_finished_on_another(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    crews: Crews,
    tmp_path: Path,
) -> None:
    data = mp4_bytes(mdat_bytes=11 * MIB + 12_345)
    sha = hashlib.sha256(data).hexdigest()
    url = _create(client, crews.order.id, crews.token_a, data, sha256=sha)
    assert _send(client, url, crews.token_a, data, 0, 6 * MIB) == ""
    offset = 6 * MIB
    store = store_of(settings)
    assert isinstance(store, S3Store)
    # one whole part went to S3, the rest waits in the spool object; nothing on this host's disk
    keys = _upload_keys(store)
    assert set(keys) == {"meta", "spool-1"} and keys["spool-1"] == offset - PART_BYTES
    assert not (settings.media_dir / "uploads").exists()

    # another host: its own settings, store, S3 client and media folder, the same database
    host_b = Settings(
        env="test",
        database_url=settings.database_url,
        media_dir=tmp_path / "host-b",
        token_pepper=settings.token_pepper,
        signing_key_path=settings.signing_key_path,
        storage=settings.storage,
    )
    assert store_of(host_b) is not store
    with TestClient(create_app(host_b, session_factory=session_factory)) as other:
        assert _offset(other, url, crews.token_a) == offset
        last = data[offset:]
        for cut in range(0, len(last), 3 * MIB):
            piece = last[cut : cut + 3 * MIB]
            done = _patch(other, url, crews.token_a, offset, piece)
            assert done.status_code == 204, done.text  # type: ignore[attr-defined]
            offset += len(piece)
        media_url = done.headers["content-location"]  # type: ignore[attr-defined]
        assert other.get(media_url, headers=auth(crews.token_a)).json()["sha256"] == sha
    content = client.get(f"{media_url}/content", headers=auth(crews.token_a))
    assert content.status_code == 200 and content.content == data  # served by the first host
    assert _upload_keys(store) == {}  # the multipart upload and its spool are gone


def test_a_worker_dying_after_a_part_loses_no_byte_the_offset_counts(
    client: TestClient, settings: Settings, crews: Crews
) -> None:
    data = mp4_bytes(mdat_bytes=7 * MIB)
    url = _create(client, crews.order.id, crews.token_a, data)
    upload_id = url.rsplit("/", 1)[1]
    assert _send(client, url, crews.token_a, data, 0, 3 * MIB) == ""  # all in the spool
    # A worker receives 3 MiB more, uploads the first whole part (the old spool's 3 MiB and
    # 2 MiB of its body) and dies before it writes the new spool.
    writer = store_of(settings).uploads.writer(upload_id)
    writer.write(data[3 * MIB : 6 * MIB])
    writer.flush()
    assert _offset(client, url, crews.token_a) == PART_BYTES  # the part counts, the rest not
    stale = _patch(client, url, crews.token_a, 6 * MIB, data[6 * MIB :])
    assert stale.status_code == 409  # type: ignore[attr-defined]
    media_url = _send(client, url, crews.token_a, data, PART_BYTES, len(data))
    item = client.get(media_url, headers=auth(crews.token_a)).json()
    assert item["sha256"] == hashlib.sha256(data).hexdigest()
    content = client.get(f"{media_url}/content", headers=auth(crews.token_a))
    assert content.content == data
