"""Settings of the service: one :class:`Settings` value read from ``FIELDOPS_*`` variables.

Built once by :func:`get_settings` (or by the caller: ``create_app(settings)``) and passed on:
endpoints get it through ``field_api.deps.AppSettings``, services and commands as an argument;
nothing reads the environment at import time and no slice reads it at all.

The core fields sit at the top level; the slices' fields are sections, each read with the
variable names it always had:

- ``settings.media``: ``FIELDOPS_MEDIA_*`` (media evidence thresholds, the worker's nice);
- ``settings.contracts``: ``FIELDOPS_CONTRACT_*`` (font, supplier, one-time codes);
- ``settings.tracking``: ``FIELDOPS_TRACKING_LINK_DAYS_AFTER_CLOSE``,
  ``FIELDOPS_WEBHOOK_ALLOW_LOOPBACK``;
- ``settings.calendar``: ``FIELDOPS_CALENDAR_OVERRIDE_PATH`` (or ``FIELDOPS_CALENDAR_OVERRIDE``),
  ``FIELDOPS_CALENDAR_STRICT``;
- ``settings.vision``: ``FIELDOPS_INSPECTIONS_DIR`` (where vision batch folders are imported
  from), ``FIELDOPS_REPAIR_SEVERITY_THRESHOLD``;
- ``settings.storage``: ``FIELDOPS_STORAGE_BACKEND`` (``local`` or ``s3``) and
  ``FIELDOPS_S3_*`` (endpoint, bucket, region, keys, path-style addressing, key prefix): where
  every stored file lives (:mod:`field_api.common.storage` builds the store from it);
- ``settings.sms``: ``FIELDOPS_SMS_*`` (the SMS gateway, its templates, the message key).
- ``settings.reliability``: ``FIELDOPS_RELIABILITY_*`` (the DL/T 836.1 and IEEE 1366
  thresholds, the urban and rural SAIDI targets, the default major-event-day threshold, the
  register snapshot job's period, the compensation policy file).

Each section is a ``BaseSettings`` of its own (its prefix keeps the old names), built from the
environment when the ``Settings`` value is; tests may pass sections explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEV_TOKEN_PEPPER = "dev-pepper-not-secret"
DEFAULT_DATABASE_URL = "sqlite:///./var/fieldops.db"
MIB = 1024 * 1024

# Media defaults: the media rules' own defaults (field_api.media.rules, field_api.media.analysis;
# test_media_defaults_are_the_media_rules_defaults in tests/field_api/test_config.py keeps the
# two equal). Configuration sits below the slices, so it names the figures rather than importing
# them.
MEDIA_MAX_DISTANCE_M = 100.0
MEDIA_REUSE_MAX_HAMMING = 6
MEDIA_REUSE_MAX_HAMMING_FOUND = 7  # rules.max_distance_found(): the band index's guarantee
MEDIA_VIDEO_MAX_BYTES = 1024 * MIB
MEDIA_MAX_IMAGE_PIXELS = 100_000_000
# The media kinds (field_api.media.rules.MediaKind values, kept equal by that test): a
# FIELDOPS_MEDIA_BARCODE_KINDS naming anything else is refused when the settings are built.
MediaKindName = Literal[
    "site", "meter_before", "meter_after", "meter_box", "seal", "wiring", "signature", "barcode",
    "other",
]


class MediaSettings(BaseSettings):
    """Limits and plausibility thresholds of crew evidence (``FIELDOPS_MEDIA_*``)."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_MEDIA_", extra="ignore")

    max_distance_m: float = Field(default=MEDIA_MAX_DISTANCE_M, gt=0)
    clock_tolerance_s: int = Field(default=600, ge=0)
    assumed_utc_offset_h: float = Field(default=8.0, ge=-12, le=14)
    reuse_max_hamming: int = Field(
        default=MEDIA_REUSE_MAX_HAMMING, ge=0, le=MEDIA_REUSE_MAX_HAMMING_FOUND
    )
    photo_max_bytes: int = Field(default=25 * MIB, gt=0)
    signature_max_bytes: int = Field(default=10 * MIB, gt=0)
    video_max_bytes: int = Field(default=MEDIA_VIDEO_MAX_BYTES, gt=0)
    max_image_pixels: int = Field(default=MEDIA_MAX_IMAGE_PIXELS, gt=0)
    meter_check_digit_rule: str | None = None
    tus_expiry_hours: int = Field(default=72, gt=0)
    body_idle_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="An upload body that sends nothing for this long is dropped (408) and "
        "its temporary file removed.",
    )
    # Media kinds (field_api.media.rules.MediaKind values) whose photo carries a barcode.
    barcode_kinds: tuple[MediaKindName, ...] = ("barcode",)
    analyse_in_process: bool = Field(
        default=True,
        description="Analyse photos in the API process after the response; False leaves "
        "them to the job workers (fieldops worker).",
    )
    worker_nice: int = Field(
        default=10, description="The niceness `fieldops media worker` adds."
    )

    @property
    def clock_tolerance(self) -> timedelta:
        return timedelta(seconds=self.clock_tolerance_s)

    @property
    def assumed_utc_offset(self) -> timedelta:
        return timedelta(hours=self.assumed_utc_offset_h)


class ContractSettings(BaseSettings):
    """The contract font, the supplier's name and the one-time-code policy
    (``FIELDOPS_CONTRACT_*``)."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_CONTRACT_", extra="ignore")

    font_path: Path | None = Field(
        default=None,
        description="A TrueType CJK font; default: WenQuanYi Zen Hei (fonts-wqy-zenhei).",
    )
    supplier_name: str = Field(default="国网示例市供电公司", min_length=1, max_length=200)
    otp_ttl_s: int = Field(default=300, ge=30, le=3600)
    otp_max_attempts: int = Field(default=5, ge=1, le=20)
    otp_resend_interval_s: int = Field(default=30, ge=0, le=3600)
    # Codes per contract in 24 h: with 5 attempts each this caps guessing at 50 of a million.
    otp_max_per_day: int = Field(default=10, ge=1, le=100)

    @property
    def otp_ttl(self) -> timedelta:
        return timedelta(seconds=self.otp_ttl_s)

    @property
    def otp_resend_interval(self) -> timedelta:
        return timedelta(seconds=self.otp_resend_interval_s)

    @property
    def sms_sender(self) -> str:
        """The one sender name of every text message to customers (signing codes, progress,
        visits): the supplier's name (``FIELDOPS_CONTRACT_SUPPLIER_NAME``) in 【】."""
        return f"【{self.supplier_name}】"


class TrackingSettings(BaseSettings):
    """Lifetime of tracking links and the webhook loopback switch.

    ``FIELDOPS_TRACKING_LINK_DAYS_AFTER_CLOSE`` (default 30): a tracking link stops working this
    many days after its order is closed or cancelled. ``FIELDOPS_WEBHOOK_ALLOW_LOOPBACK``
    (default: true in development and test, false in production, where it cannot be turned
    on; see :attr:`Settings.webhook_loopback_allowed`): webhook targets on the loopback
    interface (127.0.0.0/8, ::1, ``localhost``) are allowed, for local receivers. Private,
    link-local, multicast, reserved and metadata addresses are never allowed.
    """

    model_config = SettingsConfigDict(
        env_prefix="FIELDOPS_TRACKING_", extra="ignore", populate_by_name=True
    )

    link_days_after_close: float = Field(default=30.0, ge=0, le=3650)
    webhook_allow_loopback: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("FIELDOPS_WEBHOOK_ALLOW_LOOPBACK"),
    )


class WebhookSettings(BaseSettings):
    """Webhook delivery (``FIELDOPS_WEBHOOK_*``; the loopback switch stays in ``tracking``).

    Each subscription is a lane: its deliveries go out one at a time, under a lease longer than
    the attempt deadline; lanes of different subscriptions run concurrently (up to ``lanes``
    threads per worker). An attempt ends after ``attempt_deadline_s`` whatever the receiver
    does (a receiver trickling its answer cannot stretch it).
    """

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_WEBHOOK_", extra="ignore")

    attempt_deadline_s: float = Field(
        default=10.0, gt=0, le=300, description="The overall deadline of one delivery attempt."
    )
    lanes: int = Field(default=8, ge=1, le=64, description="Subscriptions sent to at once.")
    poll_s: float = Field(
        default=0.2, gt=0, le=10, description="How often a busy sender looks for new events."
    )
    retry_base_s: float = Field(default=30.0, ge=0, description="The first retry's delay.")
    retry_max_s: float = Field(default=6 * 3600.0, ge=0, description="The longest retry delay.")
    max_attempts: int = Field(default=12, ge=1, le=100, description="Attempts before dead.")
    rotation_overlap_s: float = Field(
        default=86400.0,
        ge=0,
        le=30 * 86400.0,
        description="How long the previous secret still signs after a rotation.",
    )

    @property
    def lane_lease_s(self) -> float:
        """The lease of a subscription's lane: longer than one attempt can last, so a second
        worker never sends to a subscriber while the first is still trying."""
        return 2 * self.attempt_deadline_s + 30.0


class CalendarSettings(BaseSettings):
    """Where the working-day calendar's override file is and whether a year without a holiday
    schedule is an error (``FIELDOPS_CALENDAR_*``)."""

    # Empty values count as unset (an empty FIELDOPS_CALENDAR_OVERRIDE_PATH is no file).
    model_config = SettingsConfigDict(
        env_prefix="FIELDOPS_CALENDAR_", extra="ignore", populate_by_name=True,
        env_ignore_empty=True,
    )

    override_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "FIELDOPS_CALENDAR_OVERRIDE_PATH", "FIELDOPS_CALENDAR_OVERRIDE"
        ),
    )
    strict: bool = False


class VisionSettings(BaseSettings):
    """What the service reads of the vision pipeline's output (``FIELDOPS_*``)."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_", extra="ignore")

    # Batch folders of `fieldops vision run` are imported from under this folder (the API
    # refuses paths outside it).
    inspections_dir: Path = Path("var/inspections")
    # A confirmed defect at or above this severity gets a repair order.
    repair_severity_threshold: int = Field(default=2, ge=0)


class JobSettings(BaseSettings):
    """The job workers (``FIELDOPS_JOBS_*``): claims, retries and the periodic work."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_JOBS_", extra="ignore")

    lease_s: float = Field(
        default=300.0, gt=0, description="How long a claim lasts unless its worker renews it."
    )
    poll_s: float = Field(default=1.0, gt=0, description="An idle worker's wait between claims.")
    backoff_base_s: float = Field(default=10.0, ge=0, description="The first retry's delay.")
    backoff_factor: float = Field(default=2.0, ge=1, description="Each retry waits this x more.")
    backoff_max_s: float = Field(default=3600.0, ge=0, description="The longest retry delay.")
    max_attempts: int = Field(default=8, ge=1, description="Attempts before a job is dead.")
    keep_done_s: float = Field(default=86400.0, ge=0, description="How long done jobs stay.")
    webhook_every_s: float = Field(default=5.0, gt=0, description="The webhook outbox's pass.")
    analyse_every_s: float = Field(default=2.0, gt=0, description="The pending photos' pass.")
    worker_nice: int = Field(
        default=10, ge=0, le=19, description="The niceness `fieldops worker` adds to itself: "
        "photo analysis and other background work yield the CPU to the API on a shared host.",
    )


class SmsSettings(BaseSettings):
    """Customer text messages (``FIELDOPS_SMS_*``): the gateway, its credentials, the template
    of each message kind and the key that encrypts pending messages.

    ``FIELDOPS_SMS_GATEWAY``: ``log`` (default; development only: messages are logged redacted
    and shown at ``GET /dev/sms``) or ``http`` (an Alibaba Cloud ``SendSms``-style gateway at
    ``FIELDOPS_SMS_ENDPOINT``, signed with ``FIELDOPS_SMS_ACCESS_KEY_ID`` and
    ``FIELDOPS_SMS_ACCESS_KEY_SECRET`` (a secret: never logged nor shown), sender signature
    ``FIELDOPS_SMS_SIGN_NAME``, one template id per kind: ``FIELDOPS_SMS_TEMPLATE_OTP``,
    ``FIELDOPS_SMS_TEMPLATE_PROGRESS``, ``FIELDOPS_SMS_TEMPLATE_VISIT``,
    ``FIELDOPS_SMS_TEMPLATE_OUTAGE``). Production refuses
    ``log`` and an incomplete ``http``. ``FIELDOPS_SMS_KEY_PATH`` (alias
    ``FIELDOPS_SMS_KEY_FILE``): the message key, kept outside the database like the audit key.
    """

    model_config = SettingsConfigDict(
        env_prefix="FIELDOPS_SMS_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    gateway: Literal["log", "http"] = "log"
    endpoint: str | None = Field(default=None, description="The gateway's URL (http gateway).")
    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    sign_name: str | None = Field(default=None, max_length=64)
    template_otp: str | None = Field(default=None, max_length=64)
    template_progress: str | None = Field(default=None, max_length=64)
    template_visit: str | None = Field(default=None, max_length=64)
    template_outage: str | None = Field(default=None, max_length=64)
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="One request's deadline.")
    max_attempts: int = Field(default=8, ge=1, le=50, description="Tries before a dead letter.")
    key_path: Path = Field(
        default=Path("var/keys/sms.key"),
        validation_alias=AliasChoices("FIELDOPS_SMS_KEY_PATH", "FIELDOPS_SMS_KEY_FILE", "key_path"),
    )

    def missing(self) -> list[str]:
        """What production lacks: the variables an ``http`` gateway needs (``log`` is refused)."""
        if self.gateway != "http":
            return ["FIELDOPS_SMS_GATEWAY is log (messages would never reach customers); set http"]
        wanted = {
            "FIELDOPS_SMS_ENDPOINT": self.endpoint,
            "FIELDOPS_SMS_ACCESS_KEY_ID": self.access_key_id,
            "FIELDOPS_SMS_ACCESS_KEY_SECRET": self.access_key_secret,
            "FIELDOPS_SMS_SIGN_NAME": self.sign_name,
            "FIELDOPS_SMS_TEMPLATE_OTP": self.template_otp,
            "FIELDOPS_SMS_TEMPLATE_PROGRESS": self.template_progress,
            "FIELDOPS_SMS_TEMPLATE_VISIT": self.template_visit,
            "FIELDOPS_SMS_TEMPLATE_OUTAGE": self.template_outage,
        }
        return [
            f"{name} is not set (FIELDOPS_SMS_GATEWAY=http needs it)"
            for name, value in wanted.items()
            if not value
        ]


class ReliabilitySettings(BaseSettings):
    """Supply reliability (``FIELDOPS_RELIABILITY_*``): the definitions' thresholds and targets."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_RELIABILITY_", extra="ignore")

    dlt_short_max_min: float = Field(
        default=3.0, gt=0, description="DL/T 836.1: an interruption longer than this is sustained."
    )
    ieee_momentary_max_min: float = Field(
        default=5.0, gt=0, description="IEEE 1366: an interruption longer than this is sustained."
    )
    target_urban_h: float = Field(default=2.38, gt=0, description="Urban SAIDI target, h/year.")
    target_rural_h: float = Field(default=8.52, gt=0, description="Rural SAIDI target, h/year.")
    med_threshold_min: float | None = Field(
        default=None,
        gt=0,
        description="Major-event-day threshold (minutes of daily SAIDI) used while under five "
        "years of history until a planner sets one; unset: no major event days then.",
    )
    snapshot_every_s: float = Field(
        default=3600.0, gt=0, description="How often the job snapshots this month's register."
    )
    merge_window_days: float = Field(
        default=14.0, ge=0, le=366, description="Planned-outage requests on one feeder section "
        "starting within this many days of each other are proposed for merging."
    )
    notice_days_before: float = Field(
        default=7.0, ge=0, le=60, description="Customers' planned-outage notices go out this "
        "many days before the start (at once when that is past)."
    )
    compensation_path: Path | None = Field(
        default=None,
        description="The compensation policy (a TOML file: credits per interruption longer than "
        "N hours and beyond M a year, per customer category); unset: the compensation report "
        "says the policy is missing (a development server uses a labelled demo policy).",
    )

    @field_validator("compensation_path", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class StorageSettings(BaseSettings):
    """Where stored files live: the local media folder (default) or an S3-compatible bucket.

    ``FIELDOPS_STORAGE_BACKEND=local|s3``; for ``s3``: ``FIELDOPS_S3_ENDPOINT_URL`` (unset: AWS),
    ``FIELDOPS_S3_BUCKET``, ``FIELDOPS_S3_REGION``, ``FIELDOPS_S3_ACCESS_KEY_ID``,
    ``FIELDOPS_S3_SECRET_ACCESS_KEY`` (a secret: never logged nor shown), ``FIELDOPS_S3_PATH_STYLE``
    (default true: ``endpoint/bucket/key``, what MinIO, Ceph and SeaweedFS expect; false:
    ``bucket.endpoint/key``) and ``FIELDOPS_S3_PREFIX`` (keys under this prefix, so several
    depots may share a bucket). ``FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS`` (default 24): how old a
    stored object no row references must be before the orphan sweep deletes it
    (:mod:`field_api.storage_sweep`). Uploads are received into a temporary file under the media
    folder either way, then moved into the store.
    """

    model_config = SettingsConfigDict(
        env_prefix="FIELDOPS_S3_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    backend: Literal["local", "s3"] = Field(
        default="local", validation_alias=AliasChoices("FIELDOPS_STORAGE_BACKEND", "backend")
    )
    endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("FIELDOPS_S3_ENDPOINT_URL", "endpoint_url")
    )
    bucket: str | None = Field(
        default=None,
        min_length=3,
        max_length=63,
        validation_alias=AliasChoices("FIELDOPS_S3_BUCKET", "bucket"),
    )
    region: str = Field(
        default="us-east-1",
        min_length=1,
        validation_alias=AliasChoices("FIELDOPS_S3_REGION", "region"),
    )
    access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("FIELDOPS_S3_ACCESS_KEY_ID", "access_key_id")
    )
    secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FIELDOPS_S3_SECRET_ACCESS_KEY", "secret_access_key"),
    )
    path_style: bool = Field(
        default=True, validation_alias=AliasChoices("FIELDOPS_S3_PATH_STYLE", "path_style")
    )
    prefix: str = Field(
        default="", max_length=200, pattern=r"^([A-Za-z0-9._-]+/)*$",
        validation_alias=AliasChoices("FIELDOPS_S3_PREFIX", "prefix"),
    )
    # Stored objects no row references are deleted by the orphan sweep once older than this
    # (a file stored by a request whose row is not committed yet must survive the sweep).
    orphan_grace_hours: float = Field(
        default=24.0,
        gt=0,
        validation_alias=AliasChoices("FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS", "orphan_grace_hours"),
    )

    def missing(self) -> list[str]:
        """The settings an s3 backend lacks (names of their variables; none for local)."""
        if self.backend != "s3":
            return []
        wanted = {
            "FIELDOPS_S3_BUCKET": self.bucket,
            "FIELDOPS_S3_ACCESS_KEY_ID": self.access_key_id,
            "FIELDOPS_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        return [name for name, value in wanted.items() if not value]


_SECTIONS = frozenset(
    {
        "media", "contracts", "tracking", "webhooks", "calendar", "vision", "storage", "jobs",
        "sms", "reliability",
    }
)


class _SectionlessEnv(EnvSettingsSource):
    """The environment without the section names: a section is built from its own variables."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in _SECTIONS:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    """Runtime configuration; defaults run locally (SQLite file, media folder under ./var)."""

    model_config = SettingsConfigDict(env_prefix="FIELDOPS_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    media_dir: Path = Path("var/media")
    token_pepper: str = DEV_TOKEN_PEPPER
    max_json_body_bytes: int = Field(default=256 * 1024, gt=0)
    # Requests one keep-alive connection serves before it is closed (field_api.keepalive: spreads
    # long-lived connections over `fieldops serve --workers N`); 0: never closed.
    keepalive_requests: int = Field(default=100, ge=0)
    idempotency_ttl_hours: int = Field(default=72, gt=0)
    idempotency_lease_s: int = Field(default=60, gt=0)
    signing_key_path: Path = Path("var/keys/contract-signing.key")
    audit_key_path: Path = Path("var/keys/audit-chain.key")
    audit_checkpoint_key_path: Path = Path("var/keys/audit-checkpoint.key")
    audit_checkpoint_dir: Path = Path("var/audit-checkpoints")
    audit_checkpoint_interval_s: int = Field(default=300, ge=0)
    log_level: str = "INFO"
    # The address customers open tracking links at (https://connect.example.com); required in
    # production. Unset in development, `fieldops serve` uses the address it listens on.
    public_base_url: str | None = None
    # Seconds between runs of each housekeeping job (field_api.maintenance) in the job workers;
    # unset: 60.
    maintenance_interval_s: float | None = Field(default=None, gt=0)
    # Whether the API process runs one job worker thread (field_api.jobs); unset: yes in
    # development only (production runs `fieldops worker`; tests run jobs one by one).
    worker_in_process: bool | None = None

    media: MediaSettings = Field(default_factory=MediaSettings)
    contracts: ContractSettings = Field(default_factory=ContractSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)

    # Resources built once from this value (the object store: field_api.common.storage.store_of),
    # keyed by what they were built from; a copy with other fields builds its own.
    _built: dict[Any, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Sections read their own variables (FIELDOPS_MEDIA_MAX_PHOTO_BYTES, ...), never a
        whole section as JSON from FIELDOPS_MEDIA, FIELDOPS_CALENDAR and the like."""
        return (init_settings, _SectionlessEnv(settings_cls), dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.env == "production":
            problems = []
            if self.token_pepper == DEV_TOKEN_PEPPER:
                problems.append("FIELDOPS_TOKEN_PEPPER is the development default")
            if self.database_url == DEFAULT_DATABASE_URL:
                problems.append("FIELDOPS_DATABASE_URL is the development default")
            if not self.public_base_url:
                problems.append("FIELDOPS_PUBLIC_BASE_URL is not set (tracking links need it)")
            if len(self.token_pepper) < 16:
                problems.append("FIELDOPS_TOKEN_PEPPER must be at least 16 characters")
            problems.extend(
                f"{name} is not set (FIELDOPS_STORAGE_BACKEND=s3 needs it)"
                for name in self.storage.missing()
            )
            problems.extend(self.sms.missing())
            if problems:
                raise ValueError("production refuses development defaults: " + "; ".join(problems))
        return self

    def built(self, key: Any, build: Callable[[], Any]) -> Any:
        """The resource built for ``key`` from this value, built on first use (one per key)."""
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def maintenance_every_s(self) -> float:
        """The period of the housekeeping jobs (sweeps, purges, checkpoints): 60 s unless
        ``FIELDOPS_MAINTENANCE_INTERVAL_S`` says otherwise."""
        return self.maintenance_interval_s or 60.0

    @property
    def runs_worker_in_process(self) -> bool:
        """Whether the API process runs a job worker thread."""
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.env == "development"

    @property
    def webhook_loopback_allowed(self) -> bool:
        """Whether webhook targets may be on the loopback interface (never in production)."""
        if self.is_production:
            return False
        configured = self.tracking.webhook_allow_loopback
        return True if configured is None else configured


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings()


#: Key of ``Session.info`` under which a request or command puts the settings it runs with.
SETTINGS_KEY = "fieldops.settings"


class _WithInfo(Protocol):
    """A SQLAlchemy ``Session`` as :func:`settings_of` sees it (config imports no SQLAlchemy:
    pure rules import config)."""

    @property
    def info(self) -> dict[Any, Any]: ...


def settings_of(session: _WithInfo) -> Settings:
    """The settings of the app or command this session works for.

    The request dependency (:func:`field_api.deps.get_db`) and the command line
    (:func:`field_api.cli.context.service_context`) put them in ``session.info``, so a transition
    listener or a service deep in a use case reads the value ``create_app`` was given, not the
    environment; a bare session (a test calling a service directly) gets :func:`get_settings`.
    """
    found = session.info.get(SETTINGS_KEY)
    return found if isinstance(found, Settings) else get_settings()
