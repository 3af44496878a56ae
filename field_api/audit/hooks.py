"""The audit guard is part of every session of the service."""

from __future__ import annotations

from field_api.audit import service


def install() -> None:
    service.install_guard()
