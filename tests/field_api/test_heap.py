"""The long-running processes' collector policy (field_api.common.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from field_api.common.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_moves_the_objects_alive_now_out_of_later_collections(unfrozen: None) -> None:
    class Cached:
        pass

    alive = [Cached() for _ in range(100)]
    frozen = freeze_startup_heap()
    # the count it returns is the permanent generation's; a frozen object freed since (by a
    # thread an earlier test left in this worker) can only lower it, never raise it
    assert frozen >= gc.get_freeze_count() > 0
    # the objects alive at start-up are no longer tracked by any generation's collection
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in tracked for o in alive)
    created_later = Cached()
    assert id(created_later) in {id(o) for o in gc.get_objects()}
