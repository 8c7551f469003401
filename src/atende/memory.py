"""Memory given back to the system after a busy spell.

What a storm of calls allocated is freed when the calls end, but glibc's allocator keeps
the freed pages for the process (RSS stayed 90 MB over its baseline after 4,000 calls in
10 s; `malloc_trim` gave them back at once: the memory was free, not leaked). So once a
30 s, when the process holds much more than after the last trim, the free pages are
given back. Where there is no glibc (musl, macOS) this does nothing.

And the cyclic garbage collector is kept off what start-up made (``settle``).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
EVERY_S = 30.0
MARGIN_MB = 64.0  # over the size after the last trim: worth a trim


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim  # this process's own C library
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def settle() -> None:
    """Once start-up is over: what it made (modules, models, the web app) stays for the
    process's life, so it is collected once and frozen out of the cyclic collector's
    sight. Otherwise each full collection walks all of it: 150-250 ms in which the
    event loop, and every call's audio, stand still (measured under load)."""
    gc.collect()
    gc.freeze()


def rss_mb() -> float:
    """This process's resident memory, in MiB (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * 4096 / 2**20


def give_back() -> bool:
    """Give the allocator's free pages back to the system; whether any went."""
    return _TRIM is not None and _TRIM(0) == 1


def worth_trimming(rss: float, after_last: float, margin: float = MARGIN_MB) -> bool:
    return rss - after_last > margin


async def keep_memory(every_s: float = EVERY_S, rss: Callable[[], float] = rss_mb,
                      trim: Callable[[], bool] = give_back) -> None:
    """Forever: every ``every_s``, trim when the process has grown by the margin since
    the last trim (or the start). The trim runs on a thread: it walks the whole heap."""
    if _TRIM is None and trim is give_back:
        return
    after_last = rss()
    while True:
        await asyncio.sleep(every_s)
        before = rss()
        if worth_trimming(before, after_last):
            await asyncio.to_thread(trim)
            after_last = rss()
            log.info("gave %.0f MB of free memory back to the system (%.0f MB now)",
                     before - after_last, after_last)
