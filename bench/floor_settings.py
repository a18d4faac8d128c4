"""Settings for the load benchmarks only: the project's settings plus bench/floor_urls.py, which adds one trivial
view behind the whole middleware stack (session, auth user, CSRF, locale, messages, CSP, axes): the framework floor
a learner page can not go below, besides /health/, which config.health.ProbeMiddleware answers before all of them."""
from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
