"""Feature matrices at a cutoff (datasets.snapshot -> features.build), shared within one pipeline run.

One nightly run used to build the same matrix several times: the one at as_of − 90 days for the engagement weights
and again as a training window; two training windows twice (selection and refit). Inside `shared()` each (cutoff, member range) is built
once and handed out as a copy (callers add columns).

A chunk's matrix depends on its members only through the BG/NBD columns (features.bgnbd_features fits them on the
matrix's buyers). A scoring chunk is therefore given its whole population's BG/NBD parameters (`bgnbd`): built
on a worker with them it equals the slice of the whole population's matrix, so inside `shared()`, where that
matrix is already built, the chunk is sliced from it instead of read again (tests/analytics/test_pipeline_scale.py
pins both facts). Without parameters a chunk is built on its own, fitted on its own buyers.

Outside `shared()` (a chunk task on another worker, a test) nothing is kept: every call builds.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pandas as pd
from django.conf import settings

from analytics.ml import datasets, features

_shared: dict[tuple[datetime, datasets.MemberRange], pd.DataFrame] | None = None


@contextlib.contextmanager
def shared() -> Iterator[None]:
    """Keep the matrices built inside the block (re-entrant: an inner block uses the outer one's)."""
    global _shared
    if _shared is not None:
        yield
        return
    _shared = {}
    try:
        yield
    finally:
        _shared = None


def at(cutoff: datetime, rng: datasets.MemberRange = datasets.ALL,
       bgnbd: dict[str, float] | None = None) -> pd.DataFrame:
    """features.build(datasets.snapshot(cutoff, rng), bgnbd), from the shared store when one is open."""
    if _shared is None:
        return _build(cutoff, rng, bgnbd)
    whole = _shared.get((cutoff, datasets.ALL))
    if bgnbd is not None and rng != datasets.ALL and whole is not None and whole.attrs.get("bgnbd_params") == bgnbd:
        return part(whole, rng)
    key = (cutoff, rng)
    if key not in _shared:
        _shared[key] = _build(cutoff, rng, bgnbd)
    if bgnbd is not None and _shared[key].attrs.get("bgnbd_params") != bgnbd:
        return _build(cutoff, rng, bgnbd)
    return _shared[key].copy()


def build_many(cutoffs: list[datetime], rng: datasets.MemberRange) -> None:
    """Inside shared() and a read_once covering `rng`: build the matrices at these cutoffs not in the store yet,
    ANALYTICS_FIT_THREADS at a time in threads, each on its own database connections (training's six windows). Only
    where datasets.alongside reads alongside (PostgreSQL, outside a transaction: another connection would not see a
    transaction's rows; SQLite's reads hold the GIL); elsewhere, and with one thread, at() builds each when asked.
    The one read of the orders and enrolments is made first, here, so the threads share it."""
    threads = max(1, int(getattr(settings, "ANALYTICS_FIT_THREADS", 1)))
    if _shared is None or threads == 1 or not datasets.reads_alongside():
        return
    missing = [c for c in dict.fromkeys(cutoffs) if (c, rng) not in _shared]
    if len(missing) < 2:
        return
    datasets.once_reads()

    def build(cutoff: datetime) -> None:
        _shared[(cutoff, rng)] = datasets.on_its_own_connection(_build, cutoff, rng, None)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="matrix") as pool:
        list(pool.map(build, missing))


def part(whole: pd.DataFrame, rng: datasets.MemberRange) -> pd.DataFrame:
    """The rows of the whole population's matrix (built with its own BG/NBD parameters) for the members in `rng`:
    what `at(cutoff, rng, those parameters)` builds for them (a copy)."""
    return whole[datasets.in_range(whole.index.to_series(), rng).to_numpy()].copy()


def _build(cutoff: datetime, rng: datasets.MemberRange, bgnbd: dict[str, float] | None) -> pd.DataFrame:
    snap = datasets.snapshot(cutoff, rng)
    return features.build(snap) if bgnbd is None else features.build(snap, bgnbd)
