"""Leases on both databases: claim, renew, release, take-over rules, parallel claimers."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Select, Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.common import owners
from field_api.db import make_engine, make_session_factory
from field_api.leases import service as leases
from field_api.leases.models import Lease
from tests.clocks import ChinaClock

KIND = "test.work"
# Another host's process: never judged gone from here, only its lease's expiry frees an item.
REMOTE = "elsewhere.example/4242/777"
REMOTE_2 = "elsewhere.example/4243/778"

_items_meta = MetaData()
ITEMS = Table("lease_test_items", _items_meta, Column("id", Integer, primary_key=True))


def _make_items(session: Session, count: int) -> None:
    ITEMS.create(session.connection(), checkfirst=True)
    session.execute(insert(ITEMS), [{"id": i} for i in range(1, count + 1)])
    session.flush()


def _candidates() -> Select[Any]:
    return select(ITEMS.c.id).order_by(ITEMS.c.id)


@pytest.fixture
def items(session: Session) -> Iterator[None]:
    _make_items(session, 40)
    yield


# -- owners -----------------------------------------------------------------------------------


def test_owner_ids_name_this_process_and_parse_back() -> None:
    mine = owners.parse(owners.owner_id())
    assert mine is not None
    assert (mine.host, mine.pid, mine.tag) == (owners.host(), os.getpid(), None)
    tagged = owners.parse(owners.owner_id("t1"))
    assert tagged is not None and tagged.tag == "t1" and tagged.process == mine.process
    assert owners.parse("no-slashes") is None
    assert owners.parse("host/notapid/1") is None


def test_liveness_is_judged_by_the_process_part() -> None:
    assert not owners.owner_is_gone(owners.owner_id())
    assert not owners.owner_is_gone(owners.owner_id("some-thread"))
    parent = owners.owner_of_pid(os.getppid())
    assert parent is not None and not owners.owner_is_gone(parent)
    assert owners.owner_is_gone(f"{owners.host()}/999999/1")
    mine = owners.parse(owners.owner_id())
    assert mine is not None
    # our pid with another start time: a process that used this pid before us
    assert owners.owner_is_gone(f"{mine.host}/{mine.pid}/{mine.start}0#x")
    assert not owners.owner_is_gone(REMOTE)
    assert not owners.owner_is_gone("not an owner")


# -- claim / renew / release ------------------------------------------------------------------


def test_claim_renew_release(session: Session, server_clock: ChinaClock) -> None:
    me = owners.owner_id("a")
    assert leases.claim(session, KIND, "k1", ttl_s=60, owner=me)
    row = leases.holder(session, KIND, "k1")
    assert row is not None and row.owner == me and row.claims == 1
    assert row.expires_at == server_clock.now() + timedelta(seconds=60)

    server_clock.advance(seconds=30)
    assert leases.claim(session, KIND, "k1", ttl_s=60, owner=me)  # renewing is claiming again
    assert leases.renew(session, KIND, "k1", ttl_s=90, owner=me)
    row = leases.holder(session, KIND, "k1")
    assert row is not None and row.claims == 1
    assert row.expires_at == server_clock.now() + timedelta(seconds=90)

    leases.release(session, KIND, "k1", owner=REMOTE)  # not the holder: nothing happens
    assert leases.holder(session, KIND, "k1") is not None
    leases.release(session, KIND, "k1", owner=me)
    assert leases.holder(session, KIND, "k1") is None
    assert not leases.renew(session, KIND, "k1", ttl_s=60, owner=me)  # released: not renewed


def test_a_live_owners_lease_is_not_taken(session: Session, server_clock: ChinaClock) -> None:
    assert leases.claim(session, KIND, "k", ttl_s=60, owner=REMOTE)
    server_clock.advance(seconds=59)
    assert not leases.claim(session, KIND, "k", ttl_s=60, owner=REMOTE_2)
    # a live local process (our parent) and another thread of this process are live owners too
    parent = owners.owner_of_pid(os.getppid())
    assert parent is not None
    assert leases.claim(session, KIND, "p", ttl_s=60, owner=parent)
    assert not leases.claim(session, KIND, "p", ttl_s=60, owner=owners.owner_id("b"))
    assert leases.claim(session, KIND, "t", ttl_s=60, owner=owners.owner_id("thread-1"))
    assert not leases.claim(session, KIND, "t", ttl_s=60, owner=owners.owner_id("thread-2"))
    row = leases.holder(session, KIND, "k")
    assert row is not None and row.owner == REMOTE


def test_an_expired_lease_is_taken(session: Session, server_clock: ChinaClock) -> None:
    assert leases.claim(session, KIND, "k", ttl_s=60, owner=REMOTE)
    server_clock.advance(seconds=60)
    assert leases.claim(session, KIND, "k", ttl_s=60, owner=REMOTE_2)
    row = leases.holder(session, KIND, "k")
    assert row is not None and row.owner == REMOTE_2 and row.claims == 2
    # the former holder learns it lost the item
    assert not leases.renew(session, KIND, "k", ttl_s=60, owner=REMOTE)


def test_a_dead_local_owners_lease_is_taken_at_once(
    session: Session, server_clock: ChinaClock
) -> None:
    dead = f"{owners.host()}/999999/1"
    assert leases.claim(session, KIND, "k", ttl_s=3600, owner=dead)
    assert leases.claim(session, KIND, "k", ttl_s=60, owner=REMOTE)  # no clock move needed
    row = leases.holder(session, KIND, "k")
    assert row is not None and row.owner == REMOTE


def test_claim_many_takes_the_free_items_in_order_up_to_the_limit(
    session: Session, server_clock: ChinaClock
) -> None:
    assert leases.claim(session, KIND, "b", ttl_s=60, owner=REMOTE)
    me = owners.owner_id("m")
    taken = leases.claim_many(session, KIND, ["a", "b", "c", "a", "d"], ttl_s=60, owner=me, limit=2)
    assert taken == ["a", "c"]
    assert leases.claim_many(session, KIND, [], ttl_s=60, owner=me) == []


def test_claim_from_reads_past_items_held_by_others(
    session: Session, server_clock: ChinaClock, items: None
) -> None:
    held = [str(i) for i in range(1, 36)]  # more than the first page of candidates
    assert leases.claim_many(session, KIND, held, ttl_s=60, owner=REMOTE) == held
    me = owners.owner_id("m")
    assert leases.claim_from(session, KIND, _candidates(), ttl_s=60, limit=3, owner=me) == [
        "36",
        "37",
        "38",
    ]
    # items we hold already are not handed out again
    assert leases.claim_from(session, KIND, _candidates(), ttl_s=60, limit=5, owner=me) == [
        "39",
        "40",
    ]
    other = owners.owner_id("n")
    assert leases.claim_from(session, KIND, _candidates(), ttl_s=60, limit=3, owner=other) == []


def test_purge_drops_only_long_expired_leases(session: Session, server_clock: ChinaClock) -> None:
    assert leases.claim(session, KIND, "old", ttl_s=60, owner=REMOTE)
    server_clock.advance(hours=2)
    assert leases.claim(session, KIND, "new", ttl_s=60, owner=REMOTE)
    assert leases.purge_expired(session, older_than_s=3600) == 1
    assert leases.holder(session, KIND, "old") is None
    assert leases.holder(session, KIND, "new") is not None


# -- several claimers at once, real commits ---------------------------------------------------


def test_parallel_claimers_never_take_an_item_twice(committed_url: str) -> None:
    setup = make_engine(committed_url)
    _items_meta.create_all(setup)
    with setup.begin() as conn:
        conn.execute(insert(ITEMS), [{"id": i} for i in range(1, 51)])
    setup.dispose()

    claimers = 4
    start = threading.Barrier(claimers)
    taken: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        engine = make_engine(committed_url)
        factory: sessionmaker[Session] = make_session_factory(engine)
        owner = owners.owner_id(f"claimer-{n}")  # live owners: nothing is taken over
        mine: list[str] = []
        try:
            start.wait(timeout=30)
            while True:
                with factory.begin() as session:
                    keys = leases.claim_from(
                        session, KIND, _candidates(), ttl_s=600, limit=3, owner=owner
                    )
                if not keys:
                    break
                mine += keys
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            taken[n] = mine
            engine.dispose()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    everything = [key for keys in taken.values() for key in keys]
    assert len(everything) == len(set(everything)), "an item was claimed twice"
    assert sorted(int(k) for k in everything) == list(range(1, 51))

    check = make_engine(committed_url)
    with make_session_factory(check)() as session:
        rows = session.execute(select(Lease).where(Lease.kind == KIND)).scalars().all()
        by_key = {row.key: row.owner for row in rows}
    check.dispose()
    for n, keys in taken.items():
        assert all(by_key[k] == owners.owner_id(f"claimer-{n}") for k in keys)


def test_a_killed_process_is_gone_before_it_is_reaped() -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = owners.owner_of_pid(child.pid)
        assert owner is not None and not owners.owner_is_gone(owner)
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie now, not reaped
        assert owners.owner_is_gone(owner)
        assert owners.owner_of_pid(child.pid) is None
    finally:
        child.kill()
        child.wait()
