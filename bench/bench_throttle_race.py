"""Concurrent requests against one API rate in Redis: DRF's own throttle code against config.api_throttles' script.

    .venv/bin/python bench/bench_throttle_race.py                       # 8 threads x 25 requests, 60/minute
    .venv/bin/python bench/bench_throttle_race.py --threads 16 --rate 100 --redis-db 10

Both run the same throttle class (config.api_throttles.CountedUserRateThrottle) against the same Redis: "DRF" calls
DRF's SimpleRateThrottle.allow_request on it (read the pickled log, append, write it back), "script" calls the class's
own allow_request (one atomic script on a sorted set). The threads start together at a barrier; every request is
the same member's. Printed per round: how many were allowed, against the rate. The Redis database given is
flushed first: use a number nobody else uses.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="per thread")
    parser.add_argument("--rate", type=int, default=60, help="allowed per minute")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-db", type=int, default=10)
    args = parser.parse_args()
    url = f"redis://127.0.0.1:6379/{args.redis_db}"
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", "REDIS_URL": url,
                       "API_THROTTLE_USER": f"{args.rate}/minute", "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import redis
    from rest_framework.throttling import SimpleRateThrottle

    from config.api_throttles import CountedUserRateThrottle

    server = redis.Redis.from_url(url)
    ways = {"DRF": lambda throttle, request: SimpleRateThrottle.allow_request(throttle, request, None),
            "script": lambda throttle, request: throttle.allow_request(request, None)}
    print(f"{args.threads} threads x {args.requests} requests of one member, rate {args.rate}/minute, Redis {url}")
    for name, allow in ways.items():
        for round_ in range(args.rounds):
            server.flushdb()
            request = SimpleNamespace(user=SimpleNamespace(pk=round_ + 1, is_authenticated=True),
                                      META={"REMOTE_ADDR": "127.0.0.1"})
            allowed: list[bool] = []
            start = threading.Barrier(args.threads)

            def ask(request: SimpleNamespace = request, allowed: list[bool] = allowed,
                    start: threading.Barrier = start, allow: object = allow) -> None:
                start.wait()
                for _ in range(args.requests):
                    allowed.append(allow(CountedUserRateThrottle(), request))  # type: ignore[operator]

            threads = [threading.Thread(target=ask) for _ in range(args.threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(f"  {name:<6} round {round_ + 1}: {allowed.count(True):4d} of {len(allowed)} allowed "
                  f"(rate {args.rate})", flush=True)
    server.flushdb()


if __name__ == "__main__":
    main()
