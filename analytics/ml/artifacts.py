"""Model artifacts on disk: joblib files under settings.ARTIFACTS_DIR, referenced by ModelVersion.artifact_path."""
from __future__ import annotations

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


def _path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else artifacts_dir() / name


def load(name: str) -> Any:
    return joblib.load(_path(name))


def delete(name: str) -> None:
    """Remove an artifact saved under `name`; nothing if it is already gone."""
    _path(name).unlink(missing_ok=True)
