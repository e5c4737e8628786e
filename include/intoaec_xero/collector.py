"""Python's cyclic garbage collector, paused over the sync's allocation-heavy loops.

Parsing a page, transforming its records and checking a chunk allocate millions of small
containers while the chunk is alive. Left to itself the collector walks them again and
again to find no cycles (Xero's JSON is a tree; rows are flat dicts): that cost a sixth of a
load's CPU. Reference counting still frees everything as soon as it is dropped; the few
cycles some libraries leave are found by :func:`collect_young` at points the loops choose.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collections inside; nesting is harmless (only the outermost resumes)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_young() -> None:
    """Collect the young generations only: recent cycles, without walking every live object."""
    gc.collect(1)
