"""The log filter: access-log paths and messages keep the route and lose the token."""

from __future__ import annotations

import logging

from uvicorn.logging import AccessFormatter

from field_api import logs

TOKEN = "kZ3_x-Qm9vT0pLrStUvWxYzAbCdEfGh1"


def _record(msg: str, *args: object, name: str = "uvicorn.access") -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_uvicorn_access_record_keeps_its_shape_and_loses_the_token() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/t/{TOKEN}?code=123456", "1.1", 200
    )
    assert logs.RedactSecrets().filter(record) is True
    line = AccessFormatter(
        '%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    ).format(record)
    assert line == '127.0.0.1:5000 - "GET /t/[redacted]?code=[redacted] HTTP/1.1" 200 OK'


def test_a_token_passed_as_the_argument_of_a_path_template_is_redacted() -> None:
    record = _record("opened /track/%s from %s", TOKEN, "sms", name="field_api.x")
    logs.RedactSecrets().filter(record)
    assert record.getMessage() == "opened /track/[redacted] from sms"
    assert TOKEN not in record.getMessage()


def test_api_tokens_and_unrelated_lines_are_kept_apart() -> None:
    record = _record("bearer %s used", "fo_" + TOKEN, name="field_api.x")
    logs.RedactSecrets().filter(record)
    assert record.getMessage() == "bearer fo_[redacted] used"
    plain = _record("GET %s %d", "/work-orders/12/tracking", 200, name="field_api.x")
    logs.RedactSecrets().filter(plain)
    assert plain.getMessage() == "GET /work-orders/12/tracking 200"
    assert plain.args == ("/work-orders/12/tracking", 200)


def test_install_is_idempotent() -> None:
    logs.install()
    logs.install()
    access = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, logs.RedactSecrets) for f in access.filters) == 1


def test_uvicorn_log_config_puts_the_filter_on_every_handler() -> None:
    config = logs.uvicorn_log_config("debug")
    assert config["filters"][logs.FILTER_NAME] == {"()": "field_api.logs.RedactSecrets"}
    assert all(logs.FILTER_NAME in h["filters"] for h in config["handlers"].values())
    assert config["loggers"]["field_api"]["level"] == "DEBUG"
    from uvicorn.config import LOGGING_CONFIG

    assert "filters" not in LOGGING_CONFIG["handlers"]["access"]  # uvicorn's own left alone


def test_mobile_and_id_numbers_in_a_logged_query_are_masked() -> None:
    line = logs.redact_text("GET /work-orders?phone=13912345678&id=44030119900101123X HTTP/1.1")
    assert "13912345678" not in line and "44030119900101123X" not in line
    assert "phone=*******5678" in line and "id=44**************3X" in line
    # ordinary numbers (ids, dates, sizes) are left alone
    assert logs.redact_text("order 12345 of 2026-12-04, 1048576 bytes") == (
        "order 12345 of 2026-12-04, 1048576 bytes"
    )
