"""Test settings: fast hashing, in-memory email, eager-free Celery (tests call functions or run real workers)."""
from __future__ import annotations

import os

# Production settings refuse to start without a secret; tests use a throwaway one and plain HTTP (the test client
# speaks http://, so SSL redirect and secure cookies would turn every request into a 301).
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# locmem by default; the worker tier (tests/test_worker_redis.py) runs Celery in other processes and passes a
# file-based backend through the environment so the test can count what the workers sent.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")  # noqa: F405
if env_str("EMAIL_FILE_PATH"):  # noqa: F405
    EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH")  # noqa: F405
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"},
          "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests-pages"},
          "page_state": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests-page-state"},
          "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
API_THROTTLE_PROCESSES = 1  # the test client is one process
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Unit tests run tasks eagerly; the Redis tier (tests/test_celery_redis.py) points a real worker at TEST_CELERY_BROKER_URL.
CELERY_BROKER_URL = env_str("TEST_CELERY_BROKER_URL", "memory://")  # noqa: F405
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)  # noqa: F405
# Files the tests write under fixed names (model artifacts "repurchase/v1-….joblib", the demo's lesson media) go to a
# folder per pytest-xdist worker (`make test` runs `pytest -n 2`): each worker has its own test database, so both
# number their first model version 1, and one worker must not overwrite, or load, the other's file.
_TEST_FILES = VAR_DIR / "test-artifacts" / env_str("PYTEST_XDIST_WORKER", "")  # noqa: F405
ARTIFACTS_DIR = _TEST_FILES / "models"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute", "events": "100000/minute"}}  # noqa: F405
# Lesson media and attachments written by tests and the demo seeder stay out of the development folder.
PRIVATE_MEDIA_ROOT = _TEST_FILES / "private-media"
# An import would send the weekly learning, which eager mode runs inside the import: the tests that are about it
# turn it on.
ANALYTICS_LEARN_AFTER_IMPORT = env_bool("ANALYTICS_LEARN_AFTER_IMPORT", False)  # noqa: F405
