"""Thread limits for the numeric libraries.

scikit-learn's OpenMP/BLAS pools default to one thread per core and spin while waiting; on a small shared machine
(2 cores, a web process and other workers beside us) that oversubscription made a 400-row KMeans 15× slower.
Parallelism comes from chunk tasks on several workers instead, so each job uses ANALYTICS_ML_THREADS (default 1).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from threadpoolctl import threadpool_limits


@contextmanager
def limited_threads() -> Iterator[None]:
    with threadpool_limits(limits=int(getattr(settings, "ANALYTICS_ML_THREADS", 1))):
        yield
