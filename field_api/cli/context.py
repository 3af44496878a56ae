"""Settings and a database session factory for one command of the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from field_api.config import Settings


@contextmanager
def service_context() -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    """Settings and a session factory for a command; the engine is disposed afterwards."""
    from field_api.audit import keys as audit_keys
    from field_api.config import SETTINGS_KEY, get_settings
    from field_api.db import make_engine, make_session_factory
    from field_api.sms import crypto as sms_crypto
    from field_api.wiring import import_all_models, install_hooks

    import_all_models()
    install_hooks()
    settings = get_settings()
    audit_keys.install(settings)
    sms_crypto.cipher_for(settings)  # the SMS key (production refuses to run without it)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    factory.configure(info={SETTINGS_KEY: settings})  # every session of the command knows them
    try:
        yield settings, factory
    finally:
        engine.dispose()
