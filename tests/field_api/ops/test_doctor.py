"""`fieldops doctor`: every check fails with a clear line for its broken part, and the whole
command passes on a freshly migrated development setup (what `make run` makes)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from alembic import command
from alembic.script import ScriptDirectory

from field_api.cli.doctor import (
    Result,
    check_calendar,
    check_database,
    check_font,
    check_free_space,
    check_keys,
    check_models,
    check_public_base_url,
    check_sms_gateway,
    check_storage,
    render_line,
)
from field_api.config import ContractSettings, Settings, SmsSettings, StorageSettings
from field_api.migrations.runner import alembic_config, upgrade
from tests.clocks import ChinaClock
from tests.s3server import S3Server
from tests.sms_support import production_sms

FIELDOPS = [sys.executable, "-m", "fieldops.cli"]
PEPPER = "doctor-pepper-0123456789"
PG = "postgresql+psycopg://fieldops:pw@db.internal:5432/fieldops"


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections to it are refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development",
        "database_url": f"sqlite:///{tmp_path}/fieldops.db",
        "media_dir": tmp_path / "media",
        "token_pepper": PEPPER,
        "signing_key_path": tmp_path / "keys" / "signing.key",
        "audit_key_path": tmp_path / "keys" / "audit.key",
        "audit_checkpoint_key_path": tmp_path / "keys" / "checkpoint.key",
        "audit_checkpoint_dir": tmp_path / "checkpoints",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def _production(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production", "database_url": PG,
        "public_base_url": "https://connect.example.com", "sms": production_sms(tmp_path),
        **overrides,
    }  # fmt: skip
    return _settings(tmp_path, **values)


def _en(result: Result) -> str:
    return render_line("check", result, "en")


# -- database ------------------------------------------------------------------------------


def test_a_database_that_cannot_be_reached_fails_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://fieldops:s3cret-pw@127.0.0.1:{_closed_port()}/fieldops"
    result = check_database(_settings(tmp_path, database_url=url))
    assert result.status == "fail"
    assert "the database cannot be reached (OperationalError)" in _en(result)
    assert "FIELDOPS_DATABASE_URL" in _en(result)
    assert "s3cret-pw" not in _en(result) and "s3cret-pw" not in render_line("c", result, "zh-CN")


def test_migrations_behind_head_fail_naming_the_upgrade(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    upgrade(settings.database_url)
    assert check_database(settings).status == "pass"
    config = alembic_config(settings.database_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    previous = ScriptDirectory.from_config(config).get_revision(head).down_revision
    command.stamp(config, str(previous) if previous else "base")
    result = check_database(settings)
    assert result.status == "fail"
    assert f"the database migrations are behind: at {previous or '-'}, head {head}" in _en(result)
    assert "fix: run fieldops db upgrade" in _en(result)


# -- public URL, SMS -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "http://0.0.0.0"]
)
def test_a_loopback_public_base_url_fails_in_production(tmp_path: Path, url: str) -> None:
    result = check_public_base_url(_production(tmp_path, public_base_url=url))
    assert result.status == "fail"
    assert "FIELDOPS_PUBLIC_BASE_URL is a loopback address" in _en(result)
    # the same address is fine on a development machine; a public one in production
    assert check_public_base_url(_settings(tmp_path, public_base_url=url)).status == "pass"
    assert check_public_base_url(_production(tmp_path)).status == "pass"


def test_the_log_sms_gateway_fails_in_production_and_passes_in_development(
    tmp_path: Path,
) -> None:
    # Production settings refuse the log gateway when built; doctor still says it plainly.
    logging_only = _production(tmp_path).model_copy(update={"sms": SmsSettings()})
    production = check_sms_gateway(logging_only)
    assert production.status == "fail"
    assert "the SMS gateway is log: signing codes and progress links" in _en(production)
    assert "FIELDOPS_SMS_GATEWAY=http" in _en(production)
    development = check_sms_gateway(_settings(tmp_path))
    assert development.status == "pass"
    assert "the SMS gateway is log (development only" in _en(development)


def test_the_http_sms_gateway_passes_with_its_settings_and_names_what_it_lacks(
    tmp_path: Path,
) -> None:
    complete = _production(tmp_path)
    result = check_sms_gateway(complete)
    assert result.status == "pass", _en(result)
    assert "SMS gateway: http https://sms.example.com/ (AccessKeyId test-key-id)" in _en(result)
    assert "test-key-secret" not in _en(result)
    lacking = _settings(
        tmp_path, sms=SmsSettings(gateway="http", endpoint="https://sms.example.com/")
    )
    result = check_sms_gateway(lacking)
    assert result.status == "fail"
    assert "FIELDOPS_SMS_ACCESS_KEY_ID, FIELDOPS_SMS_ACCESS_KEY_SECRET" in _en(result)


def test_production_refuses_to_start_with_the_log_sms_gateway(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FIELDOPS_SMS_GATEWAY is log"):
        _production(tmp_path, sms=SmsSettings())
    with pytest.raises(ValueError, match="FIELDOPS_SMS_TEMPLATE_OTP is not set"):
        _production(
            tmp_path,
            sms=production_sms(tmp_path).model_copy(update={"template_otp": None}),
        )


# -- store, font, keys -----------------------------------------------------------------------


def test_an_unwritable_store_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "media-is-a-file"
    blocker.write_text("no folder can be made here, even by root")
    result = check_storage(_settings(tmp_path, media_dir=blocker))
    assert result.status == "fail"
    assert "the file store is not writable" in _en(result)
    assert check_storage(_settings(tmp_path)).status == "pass"
    assert [p for p in (tmp_path / "media").rglob("*") if p.is_file()] == []  # probe removed


def test_the_bucket_store_passes_when_it_answers_and_fails_without_its_secret(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """With FIELDOPS_STORAGE_BACKEND=s3 the check writes, reads and deletes a probe object in the
    bucket; an S3 endpoint that refuses connections fails with a line that names no secret."""
    live = StorageSettings(**s3_server.settings(prefix="doctor-probe/"))
    assert check_storage(_settings(tmp_path, storage=live)).status == "pass"
    left = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix="doctor-probe/")
    assert left.get("KeyCount", 0) == 0  # the probe object is gone again
    gone = live.model_copy(update={"endpoint_url": f"http://127.0.0.1:{_closed_port()}"})
    result = check_storage(_settings(tmp_path, storage=gone))
    assert result.status == "fail"
    assert s3_server.secret_key not in _en(result)
    assert s3_server.secret_key not in render_line("check", result, "zh-CN")


def test_a_configured_font_that_is_missing_fails(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, contracts=ContractSettings(font_path=tmp_path / "absent.ttc")
    )
    result = check_font(settings)
    assert result.status == "fail"
    assert "the contract font does not exist" in _en(result)


def _write_keys(settings: Settings, mode: int) -> None:
    for path in (
        settings.signing_key_path, settings.audit_key_path, settings.audit_checkpoint_key_path,
        settings.sms.key_path,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"key material")
        path.chmod(mode)


def test_a_key_file_readable_by_others_fails(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    _write_keys(settings, 0o600)
    assert check_keys(settings).status == "pass"
    settings.audit_key_path.chmod(0o644)
    result = check_keys(settings)
    assert result.status == "fail"
    assert f"key files readable by group or others: {settings.audit_key_path} (0644)" in _en(result)
    assert "chmod 600" in _en(result)


def test_a_missing_key_fails_in_production_and_warns_in_development(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    _write_keys(settings, 0o600)
    settings.audit_checkpoint_key_path.unlink()
    result = check_keys(settings)
    assert result.status == "fail"
    assert "key files missing: FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH=" in _en(result)
    development = _settings(tmp_path)
    assert check_keys(development).status == "warn"  # made on first use there


# -- calendar --------------------------------------------------------------------------------


def test_a_calendar_without_this_year_fails(tmp_path: Path, server_clock: ChinaClock) -> None:
    server_clock.set_china(2099, 6, 1)
    result = check_calendar(_settings(tmp_path), lambda: 0)
    assert result.status == "fail"
    assert "no holiday schedule for 2099 (this year)" in _en(result)
    assert "fieldops calendar recompute" in _en(result)


def test_next_year_missing_is_a_warning_naming_the_provisional_deadlines(
    tmp_path: Path, server_clock: ChinaClock
) -> None:
    override = tmp_path / "calendar.yaml"
    override.write_text("2098:\n  complete: true\n")
    settings = _settings(tmp_path, calendar={"override_path": override})
    server_clock.set_china(2098, 11, 20)
    result = check_calendar(settings, lambda: 7)
    assert result.status == "warn"
    assert "no holiday schedule for 2099 yet (published late in the year): 7 deadlines are " \
        "provisional" in _en(result)
    override.write_text("2098:\n  complete: true\n2099:\n  complete: true\n")
    assert check_calendar(settings, lambda: 7).status == "pass"


# -- models, free space ----------------------------------------------------------------------


def test_a_model_file_whose_checksum_differs_fails(tmp_path: Path) -> None:
    model = tmp_path / "models" / "demo"
    model.mkdir(parents=True)
    (model / "w.onnx").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    (model / "card.yaml").write_text(yaml.safe_dump({"name": "demo", "sha256": {"w.onnx": digest}}))
    assert check_models(tmp_path / "models").status == "pass"
    (model / "w.onnx").write_bytes(b"other weights")
    result = check_models(tmp_path / "models")
    assert result.status == "fail"
    assert f"model files do not match their card's sha256: {model / 'w.onnx'} (sha256)" in _en(
        result
    )
    (model / "w.onnx").unlink()
    assert f"{model / 'w.onnx'} (missing)" in _en(check_models(tmp_path / "models"))


def test_the_repository_models_match_their_cards() -> None:
    repo_models = Path(__file__).resolve().parents[3] / "models"
    assert check_models(repo_models).status == "pass"


def test_too_little_free_space_fails_under_the_threshold(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    result = check_free_space(settings, 2**62, temp_dir=tmp_path)  # more than any disk has
    assert result.status == "fail"
    assert "too little free space for temporary files" in _en(result)
    assert "FIELDOPS_MEDIA_DIR" in _en(result) and "TMPDIR" in _en(result)
    assert check_free_space(settings, 1, temp_dir=tmp_path).status == "pass"


# -- the command -----------------------------------------------------------------------------


def _env(var: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FIELDOPS_DATABASE_URL": f"sqlite:///{var}/fieldops.db",
        "FIELDOPS_MEDIA_DIR": str(var / "media"),
        "FIELDOPS_SIGNING_KEY_PATH": str(var / "keys" / "contract-signing.key"),
        "FIELDOPS_AUDIT_KEY_PATH": str(var / "keys" / "audit-chain.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(var / "keys" / "audit-checkpoint.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(var / "audit-checkpoints"),
        "FIELDOPS_INSPECTIONS_DIR": str(var / "inspections"),
        **extra,
    }
    for name in ("FIELDOPS_ENV", "FIELDOPS_PUBLIC_BASE_URL", "FIELDOPS_TOKEN_PEPPER", "LC_ALL",
                 "LC_MESSAGES", "LANG"):  # fmt: skip
        if name not in extra:
            env.pop(name, None)
    return env


@pytest.mark.timeout(600)
def test_doctor_passes_on_a_fresh_development_setup(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    env = _env(var)
    for args in (["db", "upgrade"], ["demo", "load", "--months", "1"]):  # what `make run` does
        done = subprocess.run([*FIELDOPS, *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    done = subprocess.run([*FIELDOPS, "doctor"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    names = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines]
    assert names == ["database", "public-url", "sms", "storage", "font", "keys", "calendar",
                     "models", "disk"]  # fmt: skip
    assert all(line.startswith(("[通过]", "[警告]")) for line in lines), done.stdout  # zh-CN
    english = subprocess.run([*FIELDOPS, "doctor", "--lang", "en"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert english.stdout.splitlines()[0].startswith("[PASS] database: the database answers")
    by_env = subprocess.run([*FIELDOPS, "doctor"], env={**env, "LANG": "en_GB.UTF-8"},
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert by_env.stdout == english.stdout
    # the demo's every stored file is named by a row: a sweep past any grace finds no orphan
    # (a real process: the command must load every table the sweep reads)
    swept = subprocess.run([*FIELDOPS, "storage", "sweep-orphans", "--dry-run"],
                           env={**env, "FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS": "0.0001"},
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    counts = json.loads(swept.stdout.splitlines()[-1])
    assert counts["listed"] > 100 and counts["orphans"] == 0 and counts["young"] == 0, counts


def test_doctor_exits_1_with_a_line_for_the_broken_part(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "media").write_text("a file where the store should be")
    env = _env(var)
    done = subprocess.run([*FIELDOPS, "doctor", "--lang", "en"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert "[FAIL] database: the database migrations are behind: at -" in done.stdout
    assert "[FAIL] storage: the file store is not writable" in done.stdout
