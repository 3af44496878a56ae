"""The README's production profile names only settings and serve options that exist."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from field_api.config import Settings
from fieldops.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Production profile")
    return text[start : text.index("\n## ", start + 1)]


def _variables(model: type[BaseSettings]) -> set[str]:
    prefix = str(model.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= _variables(annotation)
            continue
        names.add(f"{prefix}{name}".upper())
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(c).upper() for c in field.validation_alias.choices}
    return names


def test_the_production_profile_names_real_settings() -> None:
    named = set(re.findall(r"FIELDOPS_[A-Z0-9_]+", _section()))
    assert {"FIELDOPS_PUBLIC_BASE_URL", "FIELDOPS_DATABASE_URL", "FIELDOPS_ENV"} <= named
    assert named - _variables(Settings) == set()


def test_the_production_profile_names_real_serve_and_doctor_options() -> None:
    section = _section()
    runner = CliRunner()
    for command in ("serve", "doctor"):
        help_text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        for option in set(re.findall(rf"fieldops {command}[^`\n]*", section)):
            for flag in re.findall(r"--[a-z-]+", option):
                assert flag in help_text, (command, flag)
    for flag in ("--graceful-timeout", "--forwarded-allow-ips", "--min-free-mib"):
        assert flag in section
