"""The service is wired by name (field_api/wiring.py); these checks make sure the lists are
complete, so a slice's router, models or hooks cannot be forgotten silently."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from fastapi import APIRouter

import field_api
from field_api import wiring

ROOT = Path(field_api.__file__).resolve().parent


def _slice_modules(name: str) -> list[str]:
    return sorted(
        f"field_api.{p.parent.name}.{name}" for p in ROOT.glob(f"*/{name}.py")
    )


def test_every_router_of_every_endpoints_module_is_mounted() -> None:
    mounted = {id(r) for r in wiring.routers()}
    defined = {
        f"{module}.{attr}": value
        for module in [*_slice_modules("endpoints"), "field_api.web.api"]
        for attr, value in vars(importlib.import_module(module)).items()
        if isinstance(value, APIRouter) and (attr == "router" or attr.endswith("_router"))
    }
    assert len(defined) >= 17  # 15 slices' routers, the inspector page, the docs pages
    assert [name for name, r in defined.items() if id(r) not in mounted] == []


def test_every_models_module_is_listed() -> None:
    assert sorted(wiring.MODEL_MODULES) == _slice_modules("models")


def test_every_hooks_module_is_installed() -> None:
    source = inspect.getsource(wiring.install_hooks)
    for module in _slice_modules("hooks"):
        slice_name = module.split(".")[1]
        assert f"from field_api.{slice_name} import hooks as {slice_name}" in source
        assert f"    {slice_name}.install()" in source
