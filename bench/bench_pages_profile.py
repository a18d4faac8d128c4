"""In-process cost of the learner pages (Django test client, DEBUG off) on an existing demo database: ms per request
and queries per request, optionally a cProfile of one page. No server, so the figures are Django's own work.

    VAR_DIR=/tmp/demo .venv/bin/python manage.py bootstrap_demo --members 1500 --months 12 --seed 7
    DJANGO_DEBUG=0 SECRET_KEY=... VAR_DIR=/tmp/demo .venv/bin/python manage.py collectstatic --noinput
    .venv/bin/python bench/bench_pages_profile.py --var-dir /tmp/demo                 # every page
    .venv/bin/python bench/bench_pages_profile.py --var-dir /tmp/demo --profile catalogue --sql catalogue
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var-dir", required=True, help="VAR_DIR holding a bootstrap_demo database and static files")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--profile", default="", help="page name to profile (cumulative, top 40)")
    parser.add_argument("--sql", default="", help="page name whose queries to print with their times")
    parser.add_argument("--no-page-cache", action="store_true", help="render every request (members.pagecache off)")
    parser.add_argument("pages", nargs="*")
    args = parser.parse_args()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "bench.floor_settings", "DJANGO_DEBUG": "0", "VAR_DIR": args.var_dir,
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789", "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0", "LOG_LEVEL": "WARNING",
    })
    if args.no_page_cache:
        os.environ["PAGE_CACHE_SECONDS"] = "0"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from members.demo.generator import LEARNER_EMAIL
    from members.models import Course, User

    client = Client()
    client.force_login(User.objects.get(email=LEARNER_EMAIL))
    slug = Course.objects.filter(is_published=True, is_generic=False).order_by("-published_at").values_list(
        "slug", flat=True).first()
    pages = {"health": "/health/", "floor": "/bench/floor/", "catalogue": "/courses/", "detail": f"/courses/{slug}/", "home": "/",
             "recs": "/recommendations/row/", "community": "/community/", "api-courses": "/api/v1/courses/",
             "api-orders": "/api/v1/me/orders/", "api-recs": "/api/v1/me/recommendations/", "api-posts": "/api/v1/posts/"}
    # The signed-in API lists as bench_api.py sends them: the learner's token, no session cookie.
    token = Token.objects.get_or_create(user=User.objects.get(email=LEARNER_EMAIL))[0].key
    api_client = Client()
    for name in args.pages or list(pages):
        headers = {"HTTP_HX_REQUEST": "true"} if name == "recs" else {}
        if name in ("api-orders", "api-recs", "api-posts"):
            client_for = api_client
            headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
        else:
            client_for = client
        assert client_for.get(pages[name], **headers).status_code == 200, name
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        client_for.get(pages[name], **headers)
        queries = list(connection.queries)
        connection.force_debug_cursor = False
        started = time.perf_counter()
        for _ in range(args.repeat):
            client_for.get(pages[name], **headers)
        ms = 1000 * (time.perf_counter() - started) / args.repeat
        print(f"{name:<12} {ms:8.1f} ms/request {len(queries):4d} queries "
              f"({1000 * sum(float(q['time']) for q in queries):.1f} ms in SQL)", flush=True)
        if args.sql == name:
            for q in queries:
                print(f"    {float(q['time']) * 1000:7.1f} ms  {q['sql'][:160]}")
        if args.profile == name:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(10):
                client_for.get(pages[name], **headers)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
