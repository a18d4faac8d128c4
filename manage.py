#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if "DJANGO_DEBUG" not in os.environ and "SECRET_KEY" not in os.environ:
        # Nothing configured: a developer's clean checkout (`manage.py makemigrations`, `check`, `shell`), so the
        # development defaults. A production environment sets SECRET_KEY and gets DEBUG off; the processes that
        # serve (gunicorn via config.wsgi, the Celery worker and beat) still refuse to start without it.
        os.environ["DJANGO_DEBUG"] = "1"
        print("manage.py: no SECRET_KEY or DJANGO_DEBUG set, using development settings (DEBUG on)", file=sys.stderr)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
