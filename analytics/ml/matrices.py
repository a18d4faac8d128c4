"""Feature matrices at a cutoff (datasets.snapshot -> features.build), shared within one pipeline run.

One nightly run used to build the same matrix several times: the one at as_of − 90 days for the engagement weights
and again as a training window; two training windows twice (selection and refit). Inside `shared()` each (cutoff, member range) is built
once and handed out as a copy (callers add columns).

A chunk's matrix is built on its own, never sliced from the whole population's: the BG/NBD columns
(features.bgnbd_features) are fitted on the members in the matrix, so a slice would differ from what a chunk task
on another worker computes (tests/analytics/test_pipeline_scale.py pins both facts).

Outside `shared()` (a chunk task on another worker, a test) nothing is kept: every call builds.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

import pandas as pd

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


def at(cutoff: datetime, rng: datasets.MemberRange = datasets.ALL) -> pd.DataFrame:
    """features.build(datasets.snapshot(cutoff, rng)), from the shared store when one is open."""
    if _shared is None:
        return features.build(datasets.snapshot(cutoff, rng))
    key = (cutoff, rng)
    if key not in _shared:
        _shared[key] = features.build(datasets.snapshot(cutoff, rng))
    return _shared[key].copy()
