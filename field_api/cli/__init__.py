"""The service's commands; composed into ``fieldops`` by ``fieldops.cli``.

The command line is the top layer, beside the web: it imports slices, no slice imports it.
Each slice's command group has its module here (``calendar``, ``contracts``, ``network``,
``webhooks``); :func:`field_api.cli.context.service_context` gives a command the settings and a
session factory.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from typing import Annotated, Any

import typer

from field_api.cli.context import service_context

app = typer.Typer(
    no_args_is_help=True, help="The fieldops service.", pretty_exceptions_enable=False
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Users and tokens.")
crews_app = typer.Typer(no_args_is_help=True, help="Crews.")
districts_app = typer.Typer(no_args_is_help=True, help="Districts.")
demo_app = typer.Typer(no_args_is_help=True, help="Demo data.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(crews_app, name="crews")
app.add_typer(districts_app, name="districts")
app.add_typer(demo_app, name="demo")
app.add_typer(audit_app, name="audit")


def _add_slice_commands() -> None:
    """The slices' command groups (their modules import only light libraries at load)."""
    from field_api.cli.calendar import app as calendar_app
    from field_api.cli.contracts import app as contracts_app
    from field_api.cli.doctor import doctor
    from field_api.cli.network import app as network_app
    from field_api.cli.sms import app as sms_app
    from field_api.cli.storage import app as storage_app
    from field_api.cli.webhooks import app as webhooks_app
    from field_api.cli.worker import worker

    app.add_typer(calendar_app, name="calendar", help="Chinese working-day calendar.")
    app.add_typer(webhooks_app, name="webhooks", help="Webhook outbox sender.")
    app.add_typer(contracts_app, name="contracts", help="Connection contracts.")
    app.add_typer(network_app, name="network", help="Low-voltage network data.")
    app.add_typer(sms_app, name="sms", help="Customer text messages (SMS).")
    app.add_typer(storage_app, name="storage", help="The file store (local folder or S3).")
    app.command("doctor")(doctor)
    app.command("worker")(worker)


_add_slice_commands()

media_app = typer.Typer(no_args_is_help=True, help="Crew evidence.")
app.add_typer(media_app, name="media")


@media_app.command("worker")
def media_worker(
    once: Annotated[bool, typer.Option(help="Run the jobs due now, then exit.")] = False,
) -> None:
    """Deprecated alias of `fieldops worker --queues media,maintenance` (niced)."""
    from field_api.cli.worker import run
    from field_api.config import get_settings

    typer.echo(
        "fieldops media worker is deprecated and will be removed in the next release: "
        "use fieldops worker --queues media,maintenance",
        err=True,
    )
    os.nice(get_settings().media.worker_nice)
    ran = run(
        queues=["media", "maintenance"], concurrency=1, once=once, handlers_from=[],
        tag="media-worker",
    )
    typer.echo(json.dumps({"ran": ran}))


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (uvicorn's process manager).")
    ] = 1,
    log_level: Annotated[
        str | None,
        typer.Option(help="critical, error, warning, info, debug or trace "
                     "(default: FIELDOPS_LOG_LEVEL)."),
    ] = None,
    graceful_timeout: Annotated[
        int,
        typer.Option(min=1, help="Seconds a stopping worker lets requests in flight (uploads) "
                     "finish before it closes them."),
    ] = 30,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(help="Proxies whose X-Forwarded-For/-Proto are trusted (comma-separated; "
                     "uvicorn's default: 127.0.0.1)."),
    ] = None,
) -> None:
    """Serve the API (uvicorn; with --workers N, N processes, each with its own socket on the
    port: SO_REUSEPORT, the kernel spreads connections over them)."""
    from pydantic import ValidationError

    from field_api import serving
    from field_api.config import get_settings

    level = (log_level or "").lower()
    if log_level is not None and level not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}",
                                 param_hint="--log-level")
    # Tracking links in SMS point at this server unless FIELDOPS_PUBLIC_BASE_URL says where
    # customers reach it (required in production). Set in the environment, so every worker
    # process (spawned by uvicorn, inheriting it) builds the same links.
    if not os.environ.get("FIELDOPS_PUBLIC_BASE_URL") and not _production_env():
        shown = "127.0.0.1" if _unspecified(host) else host
        shown = f"[{shown}]" if ":" in shown else shown
        os.environ["FIELDOPS_PUBLIC_BASE_URL"] = f"http://{shown}:{port}"
        get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as exc:
        typer.echo(f"fieldops serve: {_settings_problem(exc)}", err=True)
        raise typer.Exit(2) from exc
    if workers > 1 and settings.database_url.startswith("sqlite"):
        if settings.is_production:
            typer.echo(
                f"fieldops serve: --workers {workers} is refused in production on SQLite "
                "(one writer at a time): use PostgreSQL (FIELDOPS_DATABASE_URL) or --workers 1",
                err=True,
            )
            raise typer.Exit(2)
        typer.echo(
            f"warning: {workers} workers on SQLite: one writer at a time, writes queue and may "
            "answer 503 server.busy; use PostgreSQL for several workers",
            err=True,
        )
    options: dict[str, Any] = {
        "factory": True, "host": host, "port": port, "workers": workers,
        "log_level": level or settings.log_level.lower(),
        "log_config": _serve_log_config(level or settings.log_level, workers),
        "timeout_graceful_shutdown": graceful_timeout,
        "forwarded_allow_ips": forwarded_allow_ips,
    }
    try:  # several workers: each listens on its own SO_REUSEPORT socket (field_api.serving)
        serving.serve("field_api.main:create_app", **options)
    except serving.PortTakenError as exc:
        typer.echo(f"fieldops serve: {exc}", err=True)
        raise typer.Exit(1) from exc


def _production_env() -> bool:
    return os.environ.get("FIELDOPS_ENV", "").strip().lower() == "production"


def _settings_problem(exc: Exception) -> str:
    """The settings' refusal in one line (pydantic's first error message)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        return str(exc.errors()[0].get("msg", exc))
    return str(exc)


def _serve_log_config(level: str, workers: int) -> dict[str, object]:
    """The redacting log configuration; with several workers each line names its process."""
    from field_api.logs import uvicorn_log_config

    config = uvicorn_log_config("DEBUG" if level.lower() == "trace" else level)
    if workers > 1:
        for formatter in config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace(
                "%(levelprefix)s", "%(levelprefix)s [%(process)d]", 1
            )
    return config


def _unspecified(host: str) -> bool:
    """Whether ``host`` is the any-address (a link needs a reachable one)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


idempotency_app = typer.Typer(no_args_is_help=True, help="Idempotency-Key records.")
app.add_typer(idempotency_app, name="idempotency")


@idempotency_app.command("purge")
def idempotency_purge() -> None:
    """Delete expired Idempotency-Key records (FIELDOPS_IDEMPOTENCY_TTL_HOURS)."""
    from field_api.idempotency.service import purge_expired

    with service_context() as (_, factory), factory.begin() as session:
        deleted = purge_expired(session)
    typer.echo(json.dumps({"purged": deleted}))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations to the configured database."""
    from field_api.config import get_settings
    from field_api.migrations.runner import upgrade

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


def _fail(exc: Exception) -> None:
    from field_api.errors import DomainError

    if isinstance(exc, DomainError):
        typer.echo(json.dumps(exc.body(), ensure_ascii=False), err=True)
        raise typer.Exit(2) from exc
    raise exc


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[
        str, typer.Option(help="crew, inspector, planner, service, storekeeper, dispatcher, admin")
    ],
    crew: Annotated[str | None, typer.Option(help="Crew code (crew members only).")] = None,
) -> None:
    """Create a user and print its token once."""
    from field_api.auth import service
    from field_api.common.actors import Role

    try:
        role_value = Role(role)
    except ValueError:
        typer.echo(f"unknown role {role}", err=True)
        raise typer.Exit(2) from None
    try:
        with service_context() as (settings, factory), factory.begin() as session:
            user, token = service.create_user(
                session, name=name, role=role_value, crew_code=crew, settings=settings, actor=None
            )
            user_id = user.id
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"user_id": user_id, "token": token}))


@crews_app.command("add")
def crews_add(
    code: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    district: Annotated[str, typer.Option(help="District code.")],
    repairs: Annotated[bool, typer.Option(help="The district's repair crew.")] = False,
) -> None:
    """Create a crew in a district."""
    from field_api.auth import service

    try:
        with service_context() as (_, factory), factory.begin() as session:
            crew = service.create_crew(
                session,
                code=code,
                name=name,
                district_code=district,
                handles_repairs=repairs,
                actor=None,
            )
            crew_id = crew.id
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"crew_id": crew_id}))


@districts_app.command("add")
def districts_add(
    code: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    lv_ceiling_kw: Annotated[
        float, typer.Option(help="Low-voltage ceiling: 160 or 200 kW.")
    ] = 160.0,
) -> None:
    """Create a district."""
    from field_api.auth import service

    try:
        with service_context() as (_, factory), factory.begin() as session:
            district = service.create_district(
                session, code=code, name=name, lv_ceiling_kw=lv_ceiling_kw, actor=None
            )
            district_id = district.id
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"district_id": district_id}))


@demo_app.command("load")
def demo_load(
    months: Annotated[
        int,
        typer.Option(
            min=0,
            max=24,
            help="Months of history before the walk-through's orders (0: those orders only).",
        ),
    ] = 6,
) -> None:
    """Load the demo districts, crews, users (fixed development tokens), the walk-through's
    orders and a history of connections made through the services (seeded: the same every
    time; loading again adds nothing)."""
    import time

    from field_api import demo

    started = time.perf_counter()
    try:
        with service_context() as (settings, factory), factory.begin() as session:
            summary = demo.load(session, settings=settings, months=months)
    except Exception as exc:
        _fail(exc)
        return
    took = time.perf_counter() - started
    typer.echo(
        f"demo data loaded ({summary.orders_created} new work orders, {months} months of "
        f"history) in {took:.1f} s. Development tokens:"
    )
    for role, token in summary.tokens.items():
        typer.echo(f"  {role:<12} {token}")


@audit_app.command("verify")
def audit_verify(
    checkpoints: Annotated[
        str | None,
        typer.Option(
            help="Folder of signed checkpoints to compare the chain with (default: the "
            "configured ones when there are any: the bucket's audit-checkpoints/ with "
            "FIELDOPS_STORAGE_BACKEND=s3, else FIELDOPS_AUDIT_CHECKPOINT_DIR)."
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(help="PEM public key of the checkpoints (default: <checkpoint key>.pub)."),
    ] = None,
) -> None:
    """Verify the keyed audit chain, every audited row and the signed checkpoints; exit 1
    naming the first problem."""
    from pathlib import Path

    from field_api.audit import checkpoints as cps
    from field_api.audit import keys as audit_keys
    from field_api.audit import service
    from field_api.db import read_session
    from field_api.keyfiles import load_public_key, public_key_path_for

    with service_context() as (settings, factory), read_session(factory) as session:
        problems = [p.message for p in service.verify(session)]
        count = service.event_count(session)
        store = cps.CheckpointStore(Path(checkpoints)) if checkpoints else cps.store_of(settings)
        report = None
        if checkpoints or store.names():
            if public_key:
                key = load_public_key(Path(public_key).read_bytes())
            else:
                pub = public_key_path_for(settings.audit_checkpoint_key_path)
                key = (
                    load_public_key(pub.read_bytes())
                    if pub.exists()
                    else audit_keys.current().public_key
                )
            report = cps.verify_against(session, store, key)
            problems.extend(report.problems)
            if report.checked == 0 and not report.problems:
                typer.echo(
                    f"warning: no signed checkpoint in {store.where}: a deleted tail or a restored "
                    "older copy cannot be detected",
                    err=True,
                )
    if problems:
        typer.echo(f"audit chain BROKEN: {problems[0]}", err=True)
        for extra in problems[1:]:
            typer.echo(f"  also: {extra}", err=True)
        sys.exit(1)
    tail = ""
    if report is not None:
        tail = f"; {report.checked} signed checkpoints agree"
        if report.superseded:
            tail += f" ({report.superseded} older ones precede a re-anchor)"
    typer.echo(f"audit chain ok: {count} events{tail}")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's current head and write it to the checkpoint folder now."""
    from field_api.audit import checkpoints as cps
    from field_api.audit import service

    try:
        with service_context() as (settings, factory), factory.begin() as session:
            problems = service.verify(session)
            if problems:
                typer.echo(
                    f"not signing a broken chain: {problems[0].message}", err=True
                )
                raise typer.Exit(1)
            stored = cps.write_checkpoint(session, settings)
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(exc)
        return
    record = stored.envelope["record"]
    typer.echo(
        json.dumps(
            {"file": stored.name, "count": record["count"], "last_hash": record["last_hash"]}
        )
    )


def _operator() -> str:
    """Who runs a command on this host (recorded with a re-anchor)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@audit_app.command("reanchor")
def audit_reanchor(
    reason: Annotated[str, typer.Option(help="Why: e.g. 'restored the 2026-12-01 backup'.")],
) -> None:
    """After restoring a database backup: audit the restore and anchor the chain's new head."""
    from field_api.audit import checkpoints as cps

    try:
        with service_context() as (settings, factory), factory.begin() as session:
            stored = cps.reanchor(
                session, settings, actor=None, reason=reason, operator=_operator()
            )
    except Exception as exc:
        _fail(exc)
        return
    record = stored.envelope["record"]
    typer.echo(
        json.dumps({"file": stored.name, "count": record["count"], "reason": record["reason"]})
    )


inspections_app = typer.Typer(no_args_is_help=True, help="Drone inspection findings.")
app.add_typer(inspections_app, name="inspections")


@inspections_app.command("import")
def inspections_import(
    directory: Annotated[str, typer.Argument(help="Output folder of `fieldops vision run`.")],
) -> None:
    """Import a batch's finding records (idempotent)."""
    from pathlib import Path

    from field_api.inspections import importing

    try:
        with service_context() as (settings, factory), factory.begin() as session:
            summary = importing.import_batch(  # the operator may import from anywhere
                session, Path(directory).resolve(), settings=settings, actor=None, confined=False
            )
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(
        json.dumps(
            {
                "batch_id": summary.batch_id,
                "unchanged": summary.unchanged,
                "created": dict(summary.created),
                "updated": dict(summary.updated),
            }
        )
    )


@inspections_app.command("dispatch")
def inspections_dispatch() -> None:
    """Give every open repair order without a crew the repair crew its line maps to.

    One-off and idempotent: orders already assigned, started, or without a pole or coordinates
    are left as they are (the counts say how many).
    """
    from field_api.inspections import repairs

    try:
        with service_context() as (_settings, factory), factory.begin() as session:
            counts = repairs.dispatch_unassigned(session, actor=None)
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(json.dumps(counts))


@inspections_app.command("export-training-set")
def inspections_export(
    out: Annotated[str, typer.Argument(help="New (or empty) folder to write the set into.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Model card the classes are checked against (name or path; default: the "
            "current model, models/current.yaml)."
        ),
    ] = None,
) -> None:
    """Export reviewed photos as a retraining set: YOLO (data.yaml, train/ and val/ with images/,
    labels/ and VOC annotations/) and COCO JSON, with manifest.csv and summary.json."""
    from pathlib import Path

    from field_api.inspections import export

    try:
        with service_context() as (settings, factory), factory() as session:
            summary = export.export_training_set(
                session, Path(out), settings=settings, model=model
            )
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
