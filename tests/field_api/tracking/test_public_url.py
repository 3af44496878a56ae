"""Where tracking links point: FIELDOPS_PUBLIC_BASE_URL, required in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from field_api.config import Settings
from field_api.tracking.service import DEFAULT_PUBLIC_BASE_URL, public_url


def test_links_use_the_public_base_url() -> None:
    settings = Settings(public_base_url="https://connect.example.com/")
    assert public_url("abc", settings) == "https://connect.example.com/t/abc"


def test_development_without_a_public_base_url_links_to_the_default_address() -> None:
    assert public_url("abc", Settings(public_base_url=None)) == f"{DEFAULT_PUBLIC_BASE_URL}/t/abc"


def test_production_refuses_to_start_without_a_public_base_url() -> None:
    with pytest.raises(ValidationError, match="FIELDOPS_PUBLIC_BASE_URL"):
        Settings(
            env="production",
            token_pepper="p" * 32,
            database_url="postgresql+psycopg://x@127.0.0.1/x",
            public_base_url=None,
        )
