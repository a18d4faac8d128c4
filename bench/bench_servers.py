"""Request throughput under gunicorn (production: Procfile.prod, config/gunicorn.py) vs runserver (development:
Procfile) on the same machine, the same database and the same requests.

    .venv/bin/python bench/bench_servers.py
    .venv/bin/python bench/bench_servers.py --requests 300 --concurrency 8 --workers 3 --threads 2 --rounds 2

gunicorn runs as production runs it (config/gunicorn.py: gthread workers, access log), runserver as the dev
Procfile does (threaded, --noreload). It reuses bench/bench_api.py's seed and load generator (one fresh SQLite
database, DEBUG off, throttles raised out of the way), then measures gunicorn and runserver in alternating rounds (G R G R …) so that load from
other jobs on a shared machine hits both alike, and prints requests/s per endpoint and server, the median over the
rounds, and the gunicorn/runserver ratio. Compare within one run; nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api  # noqa: E402 - bench/ is not a package; bench_api puts the project root on sys.path


def stop(server: subprocess.Popen[bytes]) -> None:
    """gunicorn finishes in-flight requests on SIGTERM (graceful timeout); wait for it, then insist."""
    server.terminate()
    try:
        server.wait(timeout=45)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def start_production_gunicorn(*, env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    """gunicorn exactly as Procfile.prod and the image run it (config/gunicorn.py: gthread workers, access log),
    on loopback."""
    env = {**env, "BIND_HOST": bench_api.HOST, "PORT": str(port), "WEB_CONCURRENCY": str(workers),
           "GUNICORN_THREADS": str(threads)}
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--config",
               str(bench_api.ROOT / "config/gunicorn.py"), "--chdir", str(bench_api.ROOT)]
    return _started(command, env=env, port=port)


def start_runserver(*, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Django's development server as the dev Procfile runs it (threaded), without the autoreloader."""
    command = [sys.executable, "manage.py", "runserver", f"{bench_api.HOST}:{port}",
               "--noreload"]
    return _started(command, env=env, port=port)


def _started(command: list[str], *, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, cwd=bench_api.ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a loaded shared machine can take a while to import Django
    while time.monotonic() < deadline:
        try:
            if bench_api.request(port, "/api/v1/health/", None)[0] == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited during start-up")
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{command[0]} did not answer /api/v1/health/ within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="Requests per endpoint per round (default 300).")
    parser.add_argument("--concurrency", type=int, default=8, help="Client threads (default 8).")
    parser.add_argument("--workers", type=int, default=3,
                        help="gunicorn workers (default 3, config/gunicorn.py's WEB_CONCURRENCY default).")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads per gunicorn worker (default 2, config/gunicorn.py's GUNICORN_THREADS).")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds per server (default 2).")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--courses", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default="",
                        help="Shared cache on Redis, as compose.yaml runs it (e.g. redis://127.0.0.1:6379/12); "
                        "default: the database cache table, the fallback without REDIS_URL.")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    env = bench_api._environment(var_dir, None)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    os.environ.update(env)
    started = time.perf_counter()
    tokens = bench_api.seed(members=args.members, courses=args.courses, seed_value=args.seed)
    print(f"seeded {args.members} members, {args.courses} courses in {time.perf_counter() - started:.1f}s (SQLite)",
          flush=True)
    from django.db import connections

    connections.close_all()
    targets = [
        bench_api.Target("health (no database)", "/api/v1/health/", None),
        bench_api.Target("courses list (anon)", "/api/v1/courses/", None),
        bench_api.Target("my orders (learner)", "/api/v1/me/orders/", tokens["learner"]),
    ]
    rps: dict[tuple[str, str], list[float]] = {}
    errors = 0
    try:
        for round_no in range(args.rounds):
            for kind in ("gunicorn", "runserver"):
                port = bench_api._free_port()
                if kind == "gunicorn":
                    server = start_production_gunicorn(env=env, port=port, workers=args.workers,
                                                       threads=args.threads)
                else:
                    server = start_runserver(env=env, port=port)
                try:
                    for target in targets:
                        result = bench_api.load(port=port, target=target, requests=args.requests,
                                                concurrency=args.concurrency, warmup=min(20, args.requests))
                        rps.setdefault((kind, target.name), []).append(result.rps)
                        errors += result.errors
                        print(f"round {round_no + 1} {kind:<9} {target.name:<22} {result.rps:8.1f} req/s "
                              f"p95 {result.p95_ms:7.1f} ms errors {result.errors}", flush=True)
                finally:
                    stop(server)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    print(f"\n{args.requests} requests per endpoint per round, {args.rounds} rounds, {args.concurrency} client "
          f"threads, gunicorn (config/gunicorn.py) {args.workers} workers x {args.threads} threads vs runserver "
          f"(threaded), cache {'Redis' if args.redis_url else 'database table'}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (other jobs share the CPUs)\n")
    print(f"{'endpoint':<22} {'gunicorn req/s':>15} {'runserver req/s':>16} {'ratio':>6}")
    for target in targets:
        g = statistics.median(rps[("gunicorn", target.name)])
        r = statistics.median(rps[("runserver", target.name)])
        print(f"{target.name:<22} {g:>15.1f} {r:>16.1f} {g / r if r else 0:>6.2f}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
