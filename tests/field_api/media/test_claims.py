"""Deferred analysis under leases: each pending photo is analysed by one process, once.

Items are claimed (``media.analyse``) before their pixel work and released in the transaction
that records the result; a live holder's item is left alone, a dead local holder's or an
expired one is taken over, and a run that lost its lease records nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api.common import owners
from field_api.common.storage import MediaStore
from field_api.config import MediaSettings, Settings
from field_api.db import make_engine, make_session_factory
from field_api.leases import service as leases
from field_api.leases.models import Lease
from field_api.media import service
from field_api.media.models import AnalysisState, MediaItem
from tests.clocks import ChinaClock

from .imaging import BRIGHTON_18, BRIGHTON_25
from .support import Crews, create_photo

CFG = MediaSettings()
KIND = service.ANALYSE_KIND
REMOTE = "elsewhere.example/4242/777"  # another host's process: only expiry frees its items


def _state(session: Session, media_id: int) -> AnalysisState:
    session.expire_all()
    item = session.get(MediaItem, media_id)
    assert item is not None
    return item.analysis


def _lease(factory: sessionmaker[Session], media_id: int, owner: str, ttl_s: float) -> bool:
    with factory.begin() as s:
        return leases.claim(s, KIND, str(media_id), ttl_s=ttl_s, owner=owner)


def _holder(factory: sessionmaker[Session], media_id: int) -> str | None:
    with factory() as s:
        row = leases.holder(s, KIND, str(media_id))
        return None if row is None else row.owner


@pytest.fixture
def two_pending(session: Session, settings: Settings, crews: Crews) -> tuple[int, int]:
    a = create_photo(session, settings, crews, BRIGHTON_18)
    b = create_photo(session, settings, crews, BRIGHTON_25)
    session.commit()
    return a.id, b.id


def test_an_item_a_live_process_holds_is_left_to_it(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    server_clock: ChinaClock,
    two_pending: tuple[int, int],
) -> None:
    held, free = two_pending
    assert _lease(session_factory, held, REMOTE, 60)
    assert service.process_pending(session_factory, settings=settings, cfg=CFG) == 1
    assert _state(session, free) is AnalysisState.done
    assert _state(session, held) is AnalysisState.pending
    # the in-process path (right after an upload) does not run beside the holder either
    assert not service.run_analysis(session_factory, held, settings=settings, cfg=CFG)
    assert _state(session, held) is AnalysisState.pending
    assert _holder(session_factory, held) == REMOTE
    assert _holder(session_factory, free) is None  # released with the result


def test_an_expired_lease_is_taken_over(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    server_clock: ChinaClock,
    two_pending: tuple[int, int],
) -> None:
    held, _ = two_pending
    assert _lease(session_factory, held, REMOTE, 60)
    server_clock.advance(seconds=59)
    assert not service.run_analysis(session_factory, held, settings=settings, cfg=CFG)
    server_clock.advance(seconds=1)
    assert service.run_analysis(session_factory, held, settings=settings, cfg=CFG)
    assert _state(session, held) is AnalysisState.done
    assert _holder(session_factory, held) is None


def test_a_killed_processs_item_is_resumed_at_once(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    server_clock: ChinaClock,
    two_pending: tuple[int, int],
) -> None:
    held, free = two_pending
    dead = f"{owners.host()}/999999/1#analyse-0000"
    assert _lease(session_factory, held, dead, 3600)
    assert service.process_pending(session_factory, settings=settings, cfg=CFG) == 2
    assert _state(session, held) is AnalysisState.done
    assert _state(session, free) is AnalysisState.done
    assert _holder(session_factory, held) is None


def test_a_run_that_lost_its_lease_records_nothing(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    server_clock: ChinaClock,
    two_pending: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    media_id, _ = two_pending
    original = service.analyze_image

    def slow(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        server_clock.advance(seconds=service.ANALYSE_TTL_S + 1)  # stuck past the lease
        assert _lease(session_factory, media_id, REMOTE, 600)  # ... and another took it
        return result

    monkeypatch.setattr(service, "analyze_image", slow)
    assert not service.run_analysis(session_factory, media_id, settings=settings, cfg=CFG)
    assert _state(session, media_id) is AnalysisState.pending
    assert _holder(session_factory, media_id) == REMOTE


def test_a_long_analysis_renews_its_lease(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    server_clock: ChinaClock,
    two_pending: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    media_id, _ = two_pending
    original_analyze = service.analyze_image
    original_put = MediaStore.put_bytes
    attempts: list[bool] = []

    def analyze(*args: Any, **kwargs: Any) -> Any:
        server_clock.advance(seconds=100)  # within the TTL; the lease is renewed after it
        return original_analyze(*args, **kwargs)

    def put_bytes(store: MediaStore, data: bytes) -> Any:
        server_clock.advance(seconds=100)  # past the first expiry, within the renewed one
        attempts.append(_lease(session_factory, media_id, REMOTE, 600))
        return original_put(store, data)

    monkeypatch.setattr(service, "analyze_image", analyze)
    monkeypatch.setattr(MediaStore, "put_bytes", put_bytes)
    assert service.run_analysis(session_factory, media_id, settings=settings, cfg=CFG)
    assert attempts == [False]
    assert _state(session, media_id) is AnalysisState.done


def test_item_lease_keep_alive(
    session_factory: sessionmaker[Session],
    server_clock: ChinaClock,
    two_pending: tuple[int, int],
) -> None:
    media_id, _ = two_pending
    owner = service.analysis_owner()
    assert _lease(session_factory, media_id, owner, 120)
    lease = service.ItemLease(session_factory, media_id, owner=owner, ttl_s=120)

    def expiry() -> object:
        with session_factory() as s:
            row = leases.holder(s, KIND, str(media_id))
            return None if row is None else row.expires_at

    first = expiry()
    server_clock.advance(seconds=30)  # less than a third of the TTL: nothing to do
    lease.keep_alive()
    assert expiry() == first
    server_clock.advance(seconds=20)
    lease.keep_alive()
    assert expiry() == server_clock.now() + timedelta(seconds=120)
    server_clock.advance(seconds=121)
    assert _lease(session_factory, media_id, REMOTE, 600)
    with pytest.raises(service.LeaseLost):
        lease.keep_alive()


def test_two_analysis_runs_of_one_process_do_not_share_an_item(
    session_factory: sessionmaker[Session], two_pending: tuple[int, int]
) -> None:
    media_id, _ = two_pending
    first, second = service.analysis_owner(), service.analysis_owner()
    assert first != second
    assert _lease(session_factory, media_id, first, 120)
    assert not _lease(session_factory, media_id, second, 120)


def test_parallel_workers_analyse_each_item_once(
    committed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        env="test",
        database_url=committed_url,
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=tmp_path / "keys" / "signing.key",
    )
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory() as session:
        crews = Crews(session, settings)
        ids = [
            create_photo(session, settings, crews, (BRIGHTON_18, BRIGHTON_25)[i % 2]).id
            for i in range(8)
        ]
        session.commit()

    computed: Counter[int] = Counter()
    lock = threading.Lock()
    original = service.compute_analysis

    def counting(settings: Settings, cfg: MediaSettings, job: Any, **kw: Any) -> Any:
        with lock:
            computed[job.media_id] += 1
        return original(settings, cfg, job, **kw)

    monkeypatch.setattr(service, "compute_analysis", counting)
    workers = 3
    start = threading.Barrier(workers)
    done: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        own = make_engine(committed_url)
        try:
            start.wait(timeout=30)
            n = service.process_pending(make_session_factory(own), settings=settings, cfg=CFG)
            with lock:
                done.append(n)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(done) == len(ids)
    assert computed == Counter(dict.fromkeys(ids, 1))
    with factory() as session:
        states = session.execute(select(MediaItem.analysis).where(MediaItem.id.in_(ids)))
        assert {s for (s,) in states} == {AnalysisState.done}
        assert session.execute(select(Lease)).scalars().all() == []
    engine.dispose()
