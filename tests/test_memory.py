"""Free memory given back to the system: on glibc, pages freed after a busy spell leave
the process at once; the keeper trims only when the process has grown by the margin."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from atende import memory


def test_freed_memory_leaves_the_process() -> None:
    if memory._TRIM is None:
        pytest.skip("no malloc_trim in this C library")
    # Blocks past pymalloc's size go to malloc; one allocated last keeps the heap's top
    # in use, so the allocator cannot shrink the heap by itself.
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(150_000)]
    pin = [bytes(2048) for _ in range(10)]
    held = memory.rss_mb()
    del blocks
    gc.collect()
    assert memory.rss_mb() > held - 50  # freed, but still the process's
    assert memory.give_back()
    assert memory.rss_mb() < held - 100
    assert pin


async def test_the_keeper_trims_past_the_margin_only() -> None:
    sizes = [500.0, 520.0, 600.0, 510.0, 540.0, 700.0, 560.0]
    trims: list[float] = []

    class Done(Exception):
        pass

    def rss() -> float:
        if not sizes:
            raise Done
        return sizes.pop(0)

    def trim() -> bool:
        trims.append(0)
        return True
    with pytest.raises(Done):
        await asyncio.wait_for(memory.keep_memory(0.001, rss, trim), 5)
    # 520: within 64 MB of 500; 600: over, trimmed, 510 after; 540 within; 700 over.
    assert len(trims) == 2


def test_what_start_up_made_is_kept_out_of_full_collections() -> None:
    """settle: objects alive at the end of start-up are collected once, then frozen, so a
    full collection no longer walks them; garbage left by start-up is collected first,
    not frozen with the rest."""

    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    kept = Node()
    cycle_a, cycle_b = Node(), Node()
    cycle_a.other, cycle_b.other = cycle_b, cycle_a
    dropped = weakref.ref(cycle_a)
    del cycle_a, cycle_b  # start-up's garbage: a cycle only the collector frees
    try:
        memory.settle()
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # out of the collector's walk
        assert dropped() is None
        after = Node()  # made once serving: collected as usual
        assert any(o is after for o in gc.get_objects())
    finally:
        gc.unfreeze()
