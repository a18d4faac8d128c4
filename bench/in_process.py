"""Django set up inside a benchmark's own process, for the scripts that call the services and the ML layer directly
(the others run `manage.py` in a child process). The database is the one DATABASE_URL or VAR_DIR points at."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
