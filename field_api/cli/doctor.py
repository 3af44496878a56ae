"""``fieldops doctor``: checks a deployment, one line per check with its fix.

Each check is a small function of the settings (and what it reads: the database, the file
store, key files, the model cards, the disks) returning a :class:`Result`: ``pass``, ``warn``
(allowed) or ``fail``, a message and, unless it passed, the fix — each in zh-CN and en. The
command prints them in the terminal's language (``--lang`` or LC_ALL / LC_MESSAGES / LANG, as
``fieldops contracts verify``) and exits 0 only when nothing failed.

The command line is the top layer: it may read the vision model cards as YAML files itself
(``models/<name>/card.yaml``, its ``sha256`` map of file → digest) without importing vision.
"""

from __future__ import annotations

import ipaddress
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import typer

from field_api.common.i18n import Lang, normalise
from field_api.config import Settings

Status = Literal["pass", "warn", "fail"]
MIB = 1024 * 1024
DEFAULT_MIN_FREE_MIB = 1024
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

_LABELS: dict[Lang, dict[str, str]] = {
    "zh-CN": {"pass": "通过", "warn": "警告", "fail": "失败", "fix": "修复"},
    "en": {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "fix": "fix"},
}


@dataclass(frozen=True)
class Text:
    """One sentence in both languages."""

    zh: str
    en: str

    def render(self, lang: Lang) -> str:
        return self.zh if lang == "zh-CN" else self.en


@dataclass(frozen=True)
class Result:
    """What one check found, and how to fix it (None when it passed)."""

    status: Status
    message: Text
    fix: Text | None = None


def _ok(zh: str, en: str) -> Result:
    return Result("pass", Text(zh, en))


def _warn(zh: str, en: str, fix_zh: str, fix_en: str) -> Result:
    return Result("warn", Text(zh, en), Text(fix_zh, fix_en))


def _fail(zh: str, en: str, fix_zh: str, fix_en: str) -> Result:
    return Result("fail", Text(zh, en), Text(fix_zh, fix_en))


# -- database ------------------------------------------------------------------------------


def check_database(settings: Settings) -> Result:
    """The database answers ``SELECT 1`` and its schema is at the migrations' head."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from field_api.db import make_engine
    from field_api.migrations.runner import alembic_config

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # any failure to connect: name its type, never the URL
        return _fail(
            f"数据库无法连接（{type(exc).__name__}）",
            f"the database cannot be reached ({type(exc).__name__})",
            "检查 FIELDOPS_DATABASE_URL 以及数据库服务是否运行、网络和口令是否正确",
            "check FIELDOPS_DATABASE_URL, that the database server runs, the network and "
            "the password",
        )
    finally:
        engine.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())
    if current != heads:
        at = ", ".join(sorted(current)) or "-"
        head = ", ".join(sorted(heads))
        return _fail(
            f"数据库迁移未到最新：当前 {at}，最新 {head}",
            f"the database migrations are behind: at {at}, head {head}",
            "运行 fieldops db upgrade",
            "run fieldops db upgrade",
        )
    return _ok(
        f"数据库可连接，迁移已到最新（{', '.join(sorted(heads))}）",
        f"the database answers and its migrations are at head ({', '.join(sorted(heads))})",
    )


# -- public base URL, SMS ------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def check_public_base_url(settings: Settings) -> Result:
    """FIELDOPS_PUBLIC_BASE_URL is set and not a loopback address in production."""
    url = settings.public_base_url
    if not url:
        if settings.is_production:
            return _fail(
                "未设置 FIELDOPS_PUBLIC_BASE_URL（发给客户的链接需要它）",
                "FIELDOPS_PUBLIC_BASE_URL is not set (links sent to customers need it)",
                "设为客户访问服务的地址，如 https://connect.example.com",
                "set it to the address customers reach, e.g. https://connect.example.com",
            )
        return _ok(
            "未设置 FIELDOPS_PUBLIC_BASE_URL：开发环境中 fieldops serve 使用自己的地址",
            "FIELDOPS_PUBLIC_BASE_URL is not set: in development fieldops serve uses its own "
            "address",
        )
    host = urlsplit(url).hostname or ""
    if settings.is_production and (not host or _loopback(host)):
        return _fail(
            f"FIELDOPS_PUBLIC_BASE_URL 指向本机回环地址（{url}），客户无法打开链接",
            f"FIELDOPS_PUBLIC_BASE_URL is a loopback address ({url}): customers cannot open "
            "the links",
            "设为客户访问服务的公网地址（反向代理的 https 地址）",
            "set it to the public address customers reach (the reverse proxy's https URL)",
        )
    return _ok(f"公开地址：{url}", f"public base URL: {url}")


def check_sms_gateway(settings: Settings) -> Result:
    """Customer text messages reach customers: the http gateway with its endpoint, keys, sign
    name and templates (``FIELDOPS_SMS_*``); the logging gateway fails in production."""
    cfg = settings.sms
    if cfg.gateway == "log":
        if settings.is_production:
            return _fail(
                "短信网关为 log：签约验证码、进度链接不会发送给客户",
                "the SMS gateway is log: signing codes and progress links never reach customers",
                "设置 FIELDOPS_SMS_GATEWAY=http 及其端点、密钥、签名和模板",
                "set FIELDOPS_SMS_GATEWAY=http with its endpoint, keys, sign name and templates",
            )
        return _ok(
            "短信网关为 log（仅开发环境：短信见 GET /dev/sms）",
            "the SMS gateway is log (development only: messages at GET /dev/sms)",
        )
    missing = cfg.missing()
    if missing:
        names = ", ".join(m.split(" ", 1)[0] for m in missing)
        return _fail(
            f"http 短信网关缺少设置：{names}",
            f"the http SMS gateway lacks settings: {names}",
            f"设置 {names}",
            f"set {names}",
        )
    return _ok(
        f"短信网关：http {cfg.endpoint}（AccessKeyId {cfg.access_key_id}）",
        f"SMS gateway: http {cfg.endpoint} (AccessKeyId {cfg.access_key_id})",
    )


# -- file store, font, keys ----------------------------------------------------------------


def check_storage(settings: Settings) -> Result:
    """The file store takes a write, gives it back and lets it be deleted."""
    from field_api.readiness import probe_store

    cfg = settings.storage
    where = str(settings.media_dir)
    if cfg.backend == "s3":  # the bucket as well (the folder still receives uploads)
        where += f" + s3 {cfg.bucket} ({cfg.endpoint_url or 'AWS'})"
    try:
        probe_store(settings)
    except Exception as exc:  # unwritable, missing, full: the type names it
        return _fail(
            f"文件存储不可写（{type(exc).__name__}）：{where}",
            f"the file store is not writable ({type(exc).__name__}): {where}",
            "创建该目录并让服务的用户可写，或修改 FIELDOPS_MEDIA_DIR；"
            "使用 S3 时检查 FIELDOPS_S3_* 和存储桶",
            "create the folder writable by the service's user, or change FIELDOPS_MEDIA_DIR; "
            "with s3, check FIELDOPS_S3_* and that the bucket exists",
        )
    return _ok(f"文件存储可写：{where}", f"the file store is writable: {where}")


def check_font(settings: Settings) -> Result:
    """A CJK TrueType font for contracts, or the (non-embedded) STSong-Light fallback."""
    from field_api.contracts.pdf import (
        FALLBACK_FONT,
        FONT_PACKAGE,
        CjkFontMissingError,
        find_cjk_font,
    )

    configured = settings.contracts.font_path
    try:
        path = find_cjk_font(configured)
    except CjkFontMissingError:
        if configured is not None:
            return _fail(
                f"合同字体不存在：{configured}",
                f"the contract font does not exist: {configured}",
                f"安装 {FONT_PACKAGE} 或修正 FIELDOPS_CONTRACT_FONT_PATH",
                f"install {FONT_PACKAGE} or correct FIELDOPS_CONTRACT_FONT_PATH",
            )
        return _warn(
            f"没有中文 TrueType 字体：合同使用 {FALLBACK_FONT} 备用字体（不嵌入）",
            f"no CJK TrueType font: contracts use the {FALLBACK_FONT} fallback (not embedded)",
            f"apt-get install {FONT_PACKAGE}（或运行 scripts/ensure-cjk-font.sh）",
            f"apt-get install {FONT_PACKAGE} (or run scripts/ensure-cjk-font.sh)",
        )
    return _ok(f"合同字体：{path}", f"contract font: {path}")


def _keys(settings: Settings) -> list[tuple[str, Path]]:
    return [
        ("FIELDOPS_SIGNING_KEY_PATH", settings.signing_key_path),
        ("FIELDOPS_AUDIT_KEY_PATH", settings.audit_key_path),
        ("FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH", settings.audit_checkpoint_key_path),
        ("FIELDOPS_SMS_KEY_PATH", settings.sms.key_path),
    ]


def check_keys(settings: Settings) -> Result:
    """The contract signing, audit HMAC, checkpoint and SMS keys exist, readable by the owner
    only.

    A missing key fails in production; in development the service creates it on first use.
    """
    missing = [f"{name}={path}" for name, path in _keys(settings) if not path.is_file()]
    open_ = [
        f"{path} ({stat.S_IMODE(path.stat().st_mode):04o})"
        for _, path in _keys(settings)
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077
    ]
    if open_:
        listed = ", ".join(open_)
        return _fail(
            f"密钥文件可被同组或其他用户读取：{listed}",
            f"key files readable by group or others: {listed}",
            "chmod 600 这些文件（属主为服务的用户）",
            "chmod 600 those files (owned by the service's user)",
        )
    if missing:
        listed = ", ".join(missing)
        if settings.is_production:
            return _fail(
                f"缺少密钥文件：{listed}",
                f"key files missing: {listed}",
                "把密钥放到这些路径（模式 0600），或修正设置",
                "put the keys at those paths (mode 0600), or correct the settings",
            )
        return _warn(
            f"密钥文件尚未生成：{listed}（开发环境首次使用时生成）",
            f"key files not made yet: {listed} (development makes them on first use)",
            "无需处理；生产环境必须预先放置",
            "nothing to do here; production needs them in place",
        )
    return _ok(
        "三个密钥文件齐全，仅属主可读", "the three key files exist, readable by the owner only"
    )


# -- calendar --------------------------------------------------------------------------------


def _provisional_deadlines(settings: Settings) -> int | None:
    """How many deadlines are provisional now (None when the database cannot say)."""
    from sqlalchemy import func, select

    from field_api.db import make_engine, make_session_factory
    from field_api.deadlines.models import OrderDeadline

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            query = select(func.count()).select_from(OrderDeadline)
            return int(session.execute(query.where(OrderDeadline.provisional)).scalar_one())
    except Exception:  # the database check reports why
        return None
    finally:
        engine.dispose()


def check_calendar(settings: Settings, provisional: Callable[[], int | None]) -> Result:
    """Holiday data covers this year (fail) and next year (warning naming the provisional
    deadlines: official schedules are published late in the year)."""
    from field_api.common.calendar import CalendarError, calendar_for
    from field_api.common.clock import china_today

    year = china_today().year
    try:
        calendar = calendar_for(settings)
    except CalendarError as exc:
        return _fail(
            f"日历覆盖文件无法读取（{exc.code}）",
            f"the calendar override file cannot be read ({exc.code})",
            "修正 FIELDOPS_CALENDAR_OVERRIDE_PATH 指向的文件",
            "correct the file FIELDOPS_CALENDAR_OVERRIDE_PATH names",
        )
    add_year_zh = (
        "在日历覆盖文件中加入该年并标 complete: true，然后运行 fieldops calendar recompute"
    )
    add_year_en = (
        "add the year to the calendar override file with complete: true, then run "
        "fieldops calendar recompute"
    )
    if not calendar.has_schedule(year):
        return _fail(
            f"没有 {year} 年（今年）的节假日安排：期限按周末暂定计算",
            f"no holiday schedule for {year} (this year): deadlines are counted on weekends "
            "alone, provisionally",
            add_year_zh.replace("该年", f" {year} 年"),
            add_year_en.replace("the year", str(year)),
        )
    if not calendar.has_schedule(year + 1):
        count = provisional()
        shown = "?" if count is None else str(count)
        return _warn(
            f"没有 {year + 1} 年的节假日安排（通常年底公布）：{shown} 个期限为暂定",
            f"no holiday schedule for {year + 1} yet (published late in the year): {shown} "
            "deadlines are provisional",
            add_year_zh.replace("该年", f" {year + 1} 年"),
            add_year_en.replace("the year", str(year + 1)),
        )
    return _ok(f"日历覆盖 {year} 与 {year + 1} 年", f"the calendar covers {year} and {year + 1}")


# -- vision model checksums ------------------------------------------------------------------


def check_models(models_dir: Path) -> Result:
    """Every file a model card lists (``sha256``) exists with that digest."""
    import yaml

    from field_api.common.hashing import sha256_file

    cards = sorted(models_dir.glob("*/card.yaml")) if models_dir.is_dir() else []
    if not cards:
        return _ok(f"没有视觉模型（{models_dir}）", f"no vision models here ({models_dir})")
    problems: list[str] = []
    checked = 0
    for card in cards:
        try:
            listed = yaml.safe_load(card.read_text(encoding="utf-8")).get("sha256") or {}
        except (OSError, yaml.YAMLError, AttributeError) as exc:
            problems.append(f"{card} ({type(exc).__name__})")
            continue
        for name, digest in dict(listed).items():
            path = card.parent / str(name)
            if not path.is_file():
                problems.append(f"{path} (missing)")
            elif sha256_file(path) != str(digest):
                problems.append(f"{path} (sha256)")
            checked += 1
    if problems:
        listed_problems = ", ".join(problems)
        return _fail(
            f"模型文件与模型卡的 sha256 不符：{listed_problems}",
            f"model files do not match their card's sha256: {listed_problems}",
            "重新部署这些模型文件（或用训练输出重写模型卡）",
            "deploy those model files again (or rewrite the card from the training output)",
        )
    return _ok(
        f"{len(cards)} 个模型卡，{checked} 个文件校验一致",
        f"{len(cards)} model cards, {checked} files match their sha256",
    )


# -- free space ------------------------------------------------------------------------------


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(
    settings: Settings, min_free_bytes: int, temp_dir: Path | None = None
) -> Result:
    """The media folder's disk and the temporary folder's have ``min_free_bytes`` free."""
    places = {
        "FIELDOPS_MEDIA_DIR": _existing(settings.media_dir),
        "TMPDIR": _existing(temp_dir or Path(tempfile.gettempdir())),
    }
    low = []
    for name, path in places.items():
        free = shutil.disk_usage(path).free
        if free < min_free_bytes:
            low.append(f"{name} {path}: {free // MIB} MiB")
    need = f"{min_free_bytes // MIB} MiB"
    if low:
        listed = ", ".join(low)
        return _fail(
            f"临时文件空间不足（至少需要 {need}）：{listed}",
            f"too little free space for temporary files (at least {need}): {listed}",
            "清理磁盘或把 FIELDOPS_MEDIA_DIR / TMPDIR 移到更大的磁盘",
            "free space, or move FIELDOPS_MEDIA_DIR / TMPDIR to a larger disk",
        )
    return _ok(f"临时文件空间充足（≥ {need}）", f"enough free space for temporary files (≥ {need})")


# -- the command -----------------------------------------------------------------------------


def run_checks(
    settings: Settings, *, models_dir: Path = MODELS_DIR, min_free_bytes: int
) -> list[tuple[str, Result]]:
    """Every check, in the order printed."""
    checks: Iterable[tuple[str, Callable[[], Result]]] = (
        ("database", lambda: check_database(settings)),
        ("public-url", lambda: check_public_base_url(settings)),
        ("sms", lambda: check_sms_gateway(settings)),
        ("storage", lambda: check_storage(settings)),
        ("font", lambda: check_font(settings)),
        ("keys", lambda: check_keys(settings)),
        ("calendar", lambda: check_calendar(settings, lambda: _provisional_deadlines(settings))),
        ("models", lambda: check_models(models_dir)),
        ("disk", lambda: check_free_space(settings, min_free_bytes)),
    )
    return [(name, check()) for name, check in checks]


def render_line(name: str, result: Result, lang: Lang) -> str:
    """``[通过] database: …`` / ``[FAIL] keys: … — fix: …``."""
    labels = _LABELS[lang]
    line = f"[{labels[result.status]}] {name}: {result.message.render(lang)}"
    if result.fix is not None and result.status != "pass":
        line += f" — {labels['fix']}: {result.fix.render(lang)}"
    return line


def doctor(
    lang: Annotated[
        str | None, typer.Option(help="zh-CN or en (default: the terminal's language).")
    ] = None,
    min_free_mib: Annotated[
        int, typer.Option(min=0, help="Free space needed on the media and temporary disks.")
    ] = DEFAULT_MIN_FREE_MIB,
    models_dir: Annotated[
        Path, typer.Option(help="Folder of the vision models (model cards with sha256).")
    ] = MODELS_DIR,
) -> None:
    """Check this deployment: one line per check with its fix; exit 0 only when all pass."""
    from pydantic import ValidationError

    from field_api.cli.contracts import _environment_language
    from field_api.config import get_settings

    language: Lang = normalise(lang) if lang else _environment_language()
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0].get("msg", str(exc)) if exc.errors() else str(exc)
        line = Result("fail", Text(f"设置无效：{first}", f"the settings are refused: {first}"),
                      Text("修正 FIELDOPS_* 环境变量", "correct the FIELDOPS_* variables"))
        typer.echo(render_line("settings", line, language))
        raise typer.Exit(1) from exc
    results = run_checks(settings, models_dir=models_dir, min_free_bytes=min_free_mib * MIB)
    for name, result in results:
        typer.echo(render_line(name, result, language))
    if any(result.status == "fail" for _, result in results):
        raise typer.Exit(1)


__all__ = [
    "Result",
    "Text",
    "check_calendar",
    "check_database",
    "check_font",
    "check_free_space",
    "check_keys",
    "check_models",
    "check_public_base_url",
    "check_sms_gateway",
    "check_storage",
    "doctor",
    "render_line",
    "run_checks",
]
