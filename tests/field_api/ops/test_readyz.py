"""GET /readyz: 200 when the database answers and the file store takes a write, else 503."""

from __future__ import annotations

import socket
from pathlib import Path

from fastapi.testclient import TestClient

from field_api.config import Settings, StorageSettings
from field_api.main import create_app
from tests.s3server import S3Server


def test_ready_when_the_database_and_the_store_answer(client: TestClient, settings: Settings) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "storage": "ok"}}
    # the probe object is gone again: nothing is left in the store
    assert [p for p in settings.media_dir.rglob("*") if p.is_file()] == []


def test_an_unwritable_store_answers_503_naming_the_storage_check(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.media_dir = blocker  # a file: no folder can be made in it (even by root)
    answer = client.get("/readyz", headers={"Accept-Language": "en"})
    assert answer.status_code == 503
    body = answer.json()
    assert body["code"] == "server.not_ready"
    assert body["params"]["checks"] == {"database": "ok", "storage": "failed"}
    assert body["detail"] == "the service is not ready: the storage check failed"
    assert str(tmp_path) not in answer.text  # no path in the body
    chinese = client.get("/readyz").json()["detail"]
    assert chinese == "服务未就绪：文件存储检查失败"


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening, closed: connections are refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_database_that_is_gone_answers_503_naming_the_database_check(
    tmp_path: Path,
) -> None:
    settings = Settings(
        env="test",
        database_url=f"postgresql+psycopg://fieldops:s3cret-pw@127.0.0.1:{_closed_port()}/gone",
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "audit-checkpoints",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answer = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive, not ready
    assert answer.status_code == 503
    assert answer.json()["params"]["checks"] == {"database": "failed", "storage": "ok"}
    assert answer.headers["retry-after"] == "5"
    assert "s3cret-pw" not in answer.text and "127.0.0.1" not in answer.text


def test_readyz_needs_no_token(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200  # no Authorization header at all


def test_a_bucket_that_cannot_be_reached_answers_503_without_its_secret(
    client: TestClient, settings: Settings, s3_server: S3Server
) -> None:
    """On the s3 backend the storage check puts, reads and deletes a probe object in the bucket;
    an endpoint that refuses connections is a failed storage check, its secret never shown."""
    live = StorageSettings(**s3_server.settings(prefix="readyz-probe/"))
    settings.storage = live
    assert client.get("/readyz").status_code == 200
    settings.storage = live.model_copy(update={"endpoint_url": f"http://127.0.0.1:{_closed_port()}"})
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["params"]["checks"] == {"database": "ok", "storage": "failed"}
    assert s3_server.secret_key not in answer.text and "127.0.0.1" not in answer.text
