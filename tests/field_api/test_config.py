"""One Settings value: every FIELDOPS_* variable the service ever read still sets the same thing.

The table below lists each variable name known before the settings became one value (the core
``Settings``, ``MediaSettings`` with FIELDOPS_MEDIA_, the contract settings with
FIELDOPS_CONTRACT_, the tracking settings, the calendar's own reading of the environment and the
media worker's nice) and the storage settings of order 15, with a value and where it lands in
``get_settings()``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import reduce
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from field_api.config import (
    MEDIA_MAX_DISTANCE_M,
    MEDIA_MAX_IMAGE_PIXELS,
    MEDIA_REUSE_MAX_HAMMING,
    MEDIA_REUSE_MAX_HAMMING_FOUND,
    MEDIA_VIDEO_MAX_BYTES,
    MediaKindName,
    Settings,
    get_settings,
)
from tests.sms_support import production_sms_environment

# (variable, value to set, attribute path in Settings, expected value read back)
ENVIRONMENT: list[tuple[str, str, str, Any]] = [
    # core
    ("FIELDOPS_ENV", "test", "env", "test"),
    ("FIELDOPS_DATABASE_URL", "sqlite:///x.db", "database_url", "sqlite:///x.db"),
    ("FIELDOPS_MEDIA_DIR", "/srv/media", "media_dir", Path("/srv/media")),
    ("FIELDOPS_TOKEN_PEPPER", "pepper-0123456789", "token_pepper", "pepper-0123456789"),
    ("FIELDOPS_MAX_JSON_BODY_BYTES", "1234", "max_json_body_bytes", 1234),
    ("FIELDOPS_KEEPALIVE_REQUESTS", "7", "keepalive_requests", 7),
    ("FIELDOPS_IDEMPOTENCY_TTL_HOURS", "5", "idempotency_ttl_hours", 5),
    ("FIELDOPS_IDEMPOTENCY_LEASE_S", "7", "idempotency_lease_s", 7),
    ("FIELDOPS_SIGNING_KEY_PATH", "/k/s.key", "signing_key_path", Path("/k/s.key")),
    ("FIELDOPS_AUDIT_KEY_PATH", "/k/a.key", "audit_key_path", Path("/k/a.key")),
    ("FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH", "/k/c.key", "audit_checkpoint_key_path",
     Path("/k/c.key")),
    ("FIELDOPS_AUDIT_CHECKPOINT_DIR", "/cps", "audit_checkpoint_dir", Path("/cps")),
    ("FIELDOPS_AUDIT_CHECKPOINT_INTERVAL_S", "9", "audit_checkpoint_interval_s", 9),
    ("FIELDOPS_LOG_LEVEL", "debug", "log_level", "debug"),
    ("FIELDOPS_PUBLIC_BASE_URL", "https://c.example", "public_base_url", "https://c.example"),
    ("FIELDOPS_MAINTENANCE_INTERVAL_S", "2.5", "maintenance_interval_s", 2.5),
        # media (FIELDOPS_MEDIA_*), the worker's nice included
    ("FIELDOPS_MEDIA_MAX_DISTANCE_M", "55.5", "media.max_distance_m", 55.5),
    ("FIELDOPS_MEDIA_CLOCK_TOLERANCE_S", "60", "media.clock_tolerance_s", 60),
    ("FIELDOPS_MEDIA_ASSUMED_UTC_OFFSET_H", "-3", "media.assumed_utc_offset_h", -3.0),
    ("FIELDOPS_MEDIA_REUSE_MAX_HAMMING", "4", "media.reuse_max_hamming", 4),
    ("FIELDOPS_MEDIA_PHOTO_MAX_BYTES", "1000", "media.photo_max_bytes", 1000),
    ("FIELDOPS_MEDIA_SIGNATURE_MAX_BYTES", "999", "media.signature_max_bytes", 999),
    ("FIELDOPS_MEDIA_VIDEO_MAX_BYTES", "5000", "media.video_max_bytes", 5000),
    ("FIELDOPS_MEDIA_MAX_IMAGE_PIXELS", "640000", "media.max_image_pixels", 640000),
    ("FIELDOPS_MEDIA_METER_CHECK_DIGIT_RULE", "luhn", "media.meter_check_digit_rule", "luhn"),
    ("FIELDOPS_MEDIA_TUS_EXPIRY_HOURS", "12", "media.tus_expiry_hours", 12),
    ("FIELDOPS_MEDIA_BODY_IDLE_TIMEOUT_S", "1.5", "media.body_idle_timeout_s", 1.5),
    ("FIELDOPS_MEDIA_BARCODE_KINDS", '["barcode", "meter_box"]', "media.barcode_kinds",
     ("barcode", "meter_box")),
    ("FIELDOPS_MEDIA_ANALYSE_IN_PROCESS", "false", "media.analyse_in_process", False),
    ("FIELDOPS_MEDIA_WORKER_NICE", "3", "media.worker_nice", 3),
    # contracts (FIELDOPS_CONTRACT_*)
    ("FIELDOPS_CONTRACT_FONT_PATH", "/fonts/x.ttf", "contracts.font_path", Path("/fonts/x.ttf")),
    ("FIELDOPS_CONTRACT_SUPPLIER_NAME", "示例公司", "contracts.supplier_name", "示例公司"),
    ("FIELDOPS_CONTRACT_OTP_TTL_S", "120", "contracts.otp_ttl_s", 120),
    ("FIELDOPS_CONTRACT_OTP_MAX_ATTEMPTS", "3", "contracts.otp_max_attempts", 3),
    ("FIELDOPS_CONTRACT_OTP_RESEND_INTERVAL_S", "45", "contracts.otp_resend_interval_s", 45),
    ("FIELDOPS_CONTRACT_OTP_MAX_PER_DAY", "4", "contracts.otp_max_per_day", 4),
    # tracking
    ("FIELDOPS_TRACKING_LINK_DAYS_AFTER_CLOSE", "7", "tracking.link_days_after_close", 7.0),
    ("FIELDOPS_WEBHOOK_ALLOW_LOOPBACK", "false", "tracking.webhook_allow_loopback", False),
    # webhook delivery (FIELDOPS_WEBHOOK_*)
    ("FIELDOPS_WEBHOOK_ATTEMPT_DEADLINE_S", "4.5", "webhooks.attempt_deadline_s", 4.5),
    ("FIELDOPS_WEBHOOK_LANES", "3", "webhooks.lanes", 3),
    ("FIELDOPS_WEBHOOK_POLL_S", "0.05", "webhooks.poll_s", 0.05),
    ("FIELDOPS_WEBHOOK_RETRY_BASE_S", "2", "webhooks.retry_base_s", 2.0),
    ("FIELDOPS_WEBHOOK_RETRY_MAX_S", "60", "webhooks.retry_max_s", 60.0),
    ("FIELDOPS_WEBHOOK_MAX_ATTEMPTS", "5", "webhooks.max_attempts", 5),
    ("FIELDOPS_WEBHOOK_ROTATION_OVERLAP_S", "3600", "webhooks.rotation_overlap_s", 3600.0),
    # what the service reads of the vision pipeline's output
    ("FIELDOPS_INSPECTIONS_DIR", "/insp", "vision.inspections_dir", Path("/insp")),
    ("FIELDOPS_REPAIR_SEVERITY_THRESHOLD", "3", "vision.repair_severity_threshold", 3),
    # the working-day calendar (the command line also knew the short OVERRIDE name)
    ("FIELDOPS_CALENDAR_OVERRIDE_PATH", "/cal/a.yaml", "calendar.override_path",
     Path("/cal/a.yaml")),
    ("FIELDOPS_CALENDAR_OVERRIDE", "/cal/b.yaml", "calendar.override_path", Path("/cal/b.yaml")),
    ("FIELDOPS_CALENDAR_STRICT", "true", "calendar.strict", True),
    # the job workers (FIELDOPS_JOBS_*) and the API process's own worker thread
    ("FIELDOPS_WORKER_IN_PROCESS", "false", "worker_in_process", False),
    ("FIELDOPS_JOBS_LEASE_S", "12.5", "jobs.lease_s", 12.5),
    ("FIELDOPS_JOBS_POLL_S", "0.2", "jobs.poll_s", 0.2),
    ("FIELDOPS_JOBS_BACKOFF_BASE_S", "3", "jobs.backoff_base_s", 3.0),
    ("FIELDOPS_JOBS_BACKOFF_FACTOR", "1.5", "jobs.backoff_factor", 1.5),
    ("FIELDOPS_JOBS_BACKOFF_MAX_S", "90", "jobs.backoff_max_s", 90.0),
    ("FIELDOPS_JOBS_MAX_ATTEMPTS", "4", "jobs.max_attempts", 4),
    ("FIELDOPS_JOBS_KEEP_DONE_S", "60", "jobs.keep_done_s", 60.0),
    ("FIELDOPS_JOBS_WORKER_NICE", "5", "jobs.worker_nice", 5),
    ("FIELDOPS_JOBS_WEBHOOK_EVERY_S", "1.5", "jobs.webhook_every_s", 1.5),
    ("FIELDOPS_JOBS_ANALYSE_EVERY_S", "0.5", "jobs.analyse_every_s", 0.5),
    # where stored files live (order 15): the backend, then the S3 bucket's settings
    ("FIELDOPS_STORAGE_BACKEND", "s3", "storage.backend", "s3"),
    ("FIELDOPS_S3_ENDPOINT_URL", "http://s3.example:9000", "storage.endpoint_url",
     "http://s3.example:9000"),
    ("FIELDOPS_S3_BUCKET", "depot-files", "storage.bucket", "depot-files"),
    ("FIELDOPS_S3_REGION", "cn-north-1", "storage.region", "cn-north-1"),
    ("FIELDOPS_S3_ACCESS_KEY_ID", "AKEXAMPLE", "storage.access_key_id", "AKEXAMPLE"),
    ("FIELDOPS_S3_SECRET_ACCESS_KEY", "s3cr3t-value", "storage.secret_access_key",
     SecretStr("s3cr3t-value")),
    ("FIELDOPS_S3_PATH_STYLE", "false", "storage.path_style", False),
    ("FIELDOPS_S3_PREFIX", "city-a/", "storage.prefix", "city-a/"),
    ("FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS", "6", "storage.orphan_grace_hours", 6.0),
    # customer text messages (order 16): the gateway, its credentials, templates, the key
    ("FIELDOPS_SMS_GATEWAY", "http", "sms.gateway", "http"),
    ("FIELDOPS_SMS_ENDPOINT", "https://dysmsapi.example/", "sms.endpoint",
     "https://dysmsapi.example/"),
    ("FIELDOPS_SMS_ACCESS_KEY_ID", "LTAIEXAMPLE", "sms.access_key_id", "LTAIEXAMPLE"),
    ("FIELDOPS_SMS_ACCESS_KEY_SECRET", "sms-s3cr3t", "sms.access_key_secret",
     SecretStr("sms-s3cr3t")),
    ("FIELDOPS_SMS_SIGN_NAME", "供电服务", "sms.sign_name", "供电服务"),
    ("FIELDOPS_SMS_TEMPLATE_OTP", "SMS_1", "sms.template_otp", "SMS_1"),
    ("FIELDOPS_SMS_TEMPLATE_PROGRESS", "SMS_2", "sms.template_progress", "SMS_2"),
    ("FIELDOPS_SMS_TEMPLATE_VISIT", "SMS_3", "sms.template_visit", "SMS_3"),
    ("FIELDOPS_SMS_TEMPLATE_OUTAGE", "SMS_4", "sms.template_outage", "SMS_4"),
    ("FIELDOPS_SMS_TIMEOUT_S", "4.5", "sms.timeout_s", 4.5),
    ("FIELDOPS_SMS_MAX_ATTEMPTS", "3", "sms.max_attempts", 3),
    ("FIELDOPS_SMS_KEY_PATH", "/k/sms.key", "sms.key_path", Path("/k/sms.key")),
    ("FIELDOPS_SMS_KEY_FILE", "/k/sms2.key", "sms.key_path", Path("/k/sms2.key")),
    # supply reliability (order 18)
    ("FIELDOPS_RELIABILITY_DLT_SHORT_MAX_MIN", "1", "reliability.dlt_short_max_min", 1.0),
    ("FIELDOPS_RELIABILITY_IEEE_MOMENTARY_MAX_MIN", "2", "reliability.ieee_momentary_max_min",
     2.0),
    ("FIELDOPS_RELIABILITY_TARGET_URBAN_H", "1.5", "reliability.target_urban_h", 1.5),
    ("FIELDOPS_RELIABILITY_TARGET_RURAL_H", "6", "reliability.target_rural_h", 6.0),
    ("FIELDOPS_RELIABILITY_MED_THRESHOLD_MIN", "45", "reliability.med_threshold_min", 45.0),
    ("FIELDOPS_RELIABILITY_SNAPSHOT_EVERY_S", "60", "reliability.snapshot_every_s", 60.0),
    ("FIELDOPS_RELIABILITY_COMPENSATION_PATH", "/etc/fieldops/compensation.toml",
     "reliability.compensation_path", Path("/etc/fieldops/compensation.toml")),
    ("FIELDOPS_RELIABILITY_MERGE_WINDOW_DAYS", "30", "reliability.merge_window_days", 30.0),
    ("FIELDOPS_RELIABILITY_NOTICE_DAYS_BEFORE", "3", "reliability.notice_days_before", 3.0),
]
NAMES = sorted({name for name, *_ in ENVIRONMENT})


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No listed variable set; the process settings rebuilt before and after."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _read(settings: Settings, path: str) -> Any:
    return reduce(getattr, path.split("."), settings)


@pytest.mark.parametrize(("name", "raw", "path", "expected"), ENVIRONMENT, ids=lambda v: str(v))
def test_every_variable_name_reads_back_through_get_settings(
    clean_environment: pytest.MonkeyPatch, name: str, raw: str, path: str, expected: Any
) -> None:
    before = _read(get_settings(), path)
    assert before != expected  # the value set below is not the default
    get_settings.cache_clear()
    clean_environment.setenv(name, raw)
    assert _read(get_settings(), path) == expected


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for field_name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            paths |= _leaf_paths(kind, f"{prefix}{field_name}.")
        else:
            paths.add(prefix + field_name)
    return paths


def test_the_table_covers_every_setting() -> None:
    """A new setting needs a row above (its variable name, read back)."""
    assert _leaf_paths(Settings) == {path for _, _, path, _ in ENVIRONMENT}


def test_the_calendar_prefers_the_long_override_name(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("FIELDOPS_CALENDAR_OVERRIDE", "/cal/short.yaml")
    clean_environment.setenv("FIELDOPS_CALENDAR_OVERRIDE_PATH", "/cal/long.yaml")
    assert get_settings().calendar.override_path == Path("/cal/long.yaml")
    get_settings.cache_clear()
    clean_environment.setenv("FIELDOPS_CALENDAR_OVERRIDE_PATH", "")  # empty: unset
    assert get_settings().calendar.override_path == Path("/cal/short.yaml")


def test_only_fieldops_names_are_read(clean_environment: pytest.MonkeyPatch) -> None:
    """The sections read their FIELDOPS_* names only: a variable of another program that happens
    to be called like a field (OVERRIDE_PATH, WEBHOOK_ALLOW_LOOPBACK) changes nothing."""
    clean_environment.setenv("OVERRIDE_PATH", "/elsewhere/calendar.yaml")
    clean_environment.setenv("WEBHOOK_ALLOW_LOOPBACK", "false")
    settings = get_settings()
    assert settings.calendar.override_path is None
    assert settings.tracking.webhook_allow_loopback is None


def test_a_section_is_never_read_whole_from_one_variable(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """FIELDOPS_VISION='{...}' does not beat FIELDOPS_INSPECTIONS_DIR, and a stray
    FIELDOPS_CALENDAR (not JSON) does not stop start-up: sections read their own names."""
    clean_environment.setenv("FIELDOPS_VISION", '{"inspections_dir": "/from/json"}')
    clean_environment.setenv("FIELDOPS_INSPECTIONS_DIR", "/srv/inspections")
    clean_environment.setenv("FIELDOPS_CALENDAR", "not json")
    settings = get_settings()
    assert settings.vision.inspections_dir == Path("/srv/inspections")
    assert settings.calendar.override_path is None


def test_settings_are_built_once(clean_environment: pytest.MonkeyPatch) -> None:
    first = get_settings()
    clean_environment.setenv("FIELDOPS_MEDIA_PHOTO_MAX_BYTES", "1000")
    clean_environment.setenv("FIELDOPS_CONTRACT_SUPPLIER_NAME", "later")
    assert get_settings() is first
    assert get_settings().media.photo_max_bytes != 1000
    assert get_settings().contracts.sms_sender != "【later】"


def test_production_refuses_development_defaults(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("FIELDOPS_ENV", "production")
    with pytest.raises(ValidationError) as refused:
        get_settings()
    message = str(refused.value)
    assert "FIELDOPS_TOKEN_PEPPER is the development default" in message
    assert "FIELDOPS_DATABASE_URL is the development default" in message
    assert "FIELDOPS_PUBLIC_BASE_URL is not set" in message
    assert "FIELDOPS_SMS_GATEWAY is log" in message  # order 16: customers must get their SMS
    clean_environment.setenv("FIELDOPS_TOKEN_PEPPER", "short")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        get_settings()


def test_production_never_allows_loopback_webhooks(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv("FIELDOPS_WEBHOOK_ALLOW_LOOPBACK", "true")
    assert get_settings().webhook_loopback_allowed
    get_settings.cache_clear()
    for name, value in {
        "FIELDOPS_ENV": "production",
        "FIELDOPS_TOKEN_PEPPER": "production-pepper-0123456789",
        "FIELDOPS_DATABASE_URL": "postgresql+psycopg://db/fieldops",
        "FIELDOPS_PUBLIC_BASE_URL": "https://connect.example.com",
        **production_sms_environment(tmp_path),
    }.items():
        clean_environment.setenv(name, value)
    settings = get_settings()
    assert settings.is_production and settings.tracking.webhook_allow_loopback is True
    assert not settings.webhook_loopback_allowed


def test_loopback_webhooks_default_to_allowed_outside_production(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    assert get_settings().webhook_loopback_allowed
    get_settings.cache_clear()
    clean_environment.setenv("FIELDOPS_WEBHOOK_ALLOW_LOOPBACK", "false")
    assert not get_settings().webhook_loopback_allowed


def test_media_defaults_are_the_media_rules_defaults() -> None:
    """The configuration names the media figures (it sits below the slices); they agree."""
    from field_api.media import analysis, rules

    assert MEDIA_MAX_DISTANCE_M == rules.DEFAULT_MAX_DISTANCE_M
    assert MEDIA_REUSE_MAX_HAMMING == rules.DEFAULT_REUSE_MAX_HAMMING
    assert rules.max_distance_found() == MEDIA_REUSE_MAX_HAMMING_FOUND
    assert MEDIA_VIDEO_MAX_BYTES == rules.DEFAULT_VIDEO_LIMIT_BYTES
    assert MEDIA_MAX_IMAGE_PIXELS == analysis.DEFAULT_MAX_IMAGE_PIXELS
    assert set(Settings().media.barcode_kinds) <= {kind.value for kind in rules.MediaKind}
    assert set(get_args(MediaKindName)) == {kind.value for kind in rules.MediaKind}


def test_an_unknown_barcode_kind_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    """As before the settings became one value: a kind the media slice does not know is an
    error at start-up, not a setting that silently never matches."""
    clean_environment.setenv("FIELDOPS_MEDIA_BARCODE_KINDS", '["barcode", "meter"]')
    with pytest.raises(ValidationError, match="barcode_kinds"):
        get_settings()


ROOT = Path(__file__).resolve().parents[2]


def _environment_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"environ", "getenv", "environb"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_settings_and_the_command_line_touch_the_environment() -> None:
    """Slices get their settings passed in; only field_api.config reads FIELDOPS_* (and the
    command line its terminal: `serve` names its own address, `contracts verify` the locale)."""
    package = ROOT / "field_api"
    allowed = {package / "config.py", package / "cli"}
    offenders = [
        hit
        for path in sorted(package.rglob("*.py"))
        if not any(path == a or a in path.parents for a in allowed)
        for hit in _environment_reads(path)
    ]
    assert offenders == []
