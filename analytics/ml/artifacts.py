"""Model artifacts on disk: joblib files under settings.ARTIFACTS_DIR, referenced by ModelVersion.artifact_path."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
from django.conf import settings


def artifacts_dir() -> Path:
    path = Path(settings.ARTIFACTS_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(obj: Any, name: str, *, compress: int = 3) -> str:
    """Write obj to ARTIFACTS_DIR/name and return the path relative to ARTIFACTS_DIR (so the directory can move)."""
    path = artifacts_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    joblib.dump(obj, tmp, compress=compress)
    # Rename is atomic: a worker loading the serving model never sees a half-written file.
    tmp.replace(path)
    return name


def save_pickled(obj: Any, name: str) -> str:
    """save() as a plain pickle (protocol 5), for a file another worker reads back within minutes: joblib unpickles
    an object column a value at a time (the 940,000 orders and 690,000 enrolments of 100k members: 1.4–1.5 s to load
    from joblib, 0.1–0.2 s from pickle; bench/bench_learning_steps.py --only reads-file)."""
    path = artifacts_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as out:
        pickle.dump(obj, out, protocol=5)
    tmp.replace(path)
    return name


def load_pickled(name: str) -> Any:
    with _path(name).open("rb") as source:
        return pickle.load(source)  # noqa: S301 - our own file, written by save_pickled


def _path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else artifacts_dir() / name


def load(name: str) -> Any:
    return joblib.load(_path(name))


def delete(name: str) -> None:
    """Remove an artifact saved under `name`; nothing if it is already gone."""
    _path(name).unlink(missing_ok=True)
