"""Scale-out of the nightly fan-out: scoring + recommendation chunks across 1 vs 2 Celery worker processes, on
PostgreSQL + Redis.

    .venv/bin/python bench/bench_scaleout.py --source-db perfpipe_20k_src --chunk-size 2500
    .venv/bin/python bench/bench_scaleout.py --source-db bench_pipeline_src --chunk-size 10000 --workers 1 2

The history is a PostgreSQL database built by bench/bench_pipeline.py (`--postgres-db`). The script copies it
(CREATE DATABASE … TEMPLATE), migrates the copy, and prepares once, untimed and inline: a serving propensity model
(trained by model_for) — the part of the nightly run that does not fan out. Then, for each worker count N, it
starts `celery worker -Q ml --pool prefork --concurrency N` against Redis (127.0.0.1:6379, database --redis-db,
flushed first: use a number nobody else uses), waits until the worker answers a ping, and times the fan-out alone:
a new recommendation run, then the chunk tasks the nightly task sends (analytics.scoring.tasks.chunk_signature for
every range of --chunk-size member ids; each score chunk loads its part of the feature matrix, stored in the untimed
preparation as the nightly task stores it), until the run is current and every score chunk has succeeded.

Printed per worker count: wall time of the fan-out, speed-up over one process, and the per-chunk costs from the
JobRun rows (median and total seconds of score and recommend chunks; the run's start fits the recommender once
and stores it, and each process's first recommend chunk loads it). The floor is one process's own chunk total:
with N processes the wall cannot go below total / N.

Also printed per worker count: where the machine's cores went during the fan-out (bench/cpu_accounting.py: every
core's busy time, PostgreSQL's and Redis's part of it). The first worker count's fan-out, spread over every core,
gives this machine's ceiling: its cores ÷ the cores that fan-out kept busy on average, the most any number of
processes could gain here if the work stayed the same. Where PostgreSQL shares the cores, it is well under the
number of cores.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cpu_accounting import CpuSnapshot, CpuUse  # bench/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = "postgres://postgres@127.0.0.1:5432"


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-db", default="perfpipe_20k_src", help="PostgreSQL history (bench_pipeline.py)")
    parser.add_argument("--copy-db", default="perfpipe_scaleout_run")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--chunk-size", type=int, default=2500, help="member ids per chunk task")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker process counts to compare")
    parser.add_argument("--as-of", default="2025-12-31")
    parser.add_argument("--keep", action="store_true", help="leave the database copy in place")
    options = parser.parse_args()

    broker = f"redis://127.0.0.1:6379/{options.redis_db}"
    env = {**os.environ, "DATABASE_URL": f"{PG}/{options.copy_db}", "CELERY_BROKER_URL": broker,
           "ANALYTICS_CHUNK_SIZE": str(options.chunk_size), "DJANGO_DEBUG": "0",
           "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-not-a-secret"), "VAR_DIR": f"/tmp/{options.copy_db}"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    os.environ.update(env)
    _admin(f"DROP DATABASE IF EXISTS {options.copy_db} WITH (FORCE)")
    _admin(f"CREATE DATABASE {options.copy_db} TEMPLATE {options.source_db}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    import redis
    from django.db import connection
    from django.utils.dateparse import parse_datetime
    from django.utils.timezone import make_aware

    from analytics.models import JobRun
    from analytics.scoring import services
    from analytics.scoring.tasks import chunk_signature
    from config.celery import app

    connection.cursor().execute("VACUUM ANALYZE")
    redis.Redis.from_url(broker).flushdb()
    as_of = make_aware(parse_datetime(f"{options.as_of}T00:00:00"))
    started = time.perf_counter()
    version = services.model_for(as_of)
    ranges = services.member_chunks(options.chunk_size)
    # As the nightly task does before it sends the score chunks: the population's feature matrix, each range's part
    # stored for its chunk (services._share_matrix), the population's BG/NBD parameters for every chunk.
    from analytics.ml import artifacts, datasets, matrices

    with datasets.read_once(as_of):
        feats = matrices.at(as_of)
    bgnbd, parts = feats.attrs["bgnbd_params"], services._matrix_part_names(uuid.uuid4().hex, len(ranges))
    services._share_matrix(feats, ranges, parts)
    del feats
    stored = sum((artifacts.artifacts_dir() / part).stat().st_size for part in parts)
    print(f"prepared (untimed): model v{version.pk}, the feature matrix and its {len(parts)} parts "
          f"({stored / 1e6:.0f} MB stored) in {time.perf_counter() - started:.1f} s; {len(ranges)} chunks of "
          f"{options.chunk_size:,} member ids; broker {broker}; load average {os.getloadavg()[0]:.1f}", flush=True)

    walls: dict[int, float] = {}
    ceiling: float | None = None
    try:
        for workers in options.workers:
            log = open(f"/tmp/{options.copy_db}-worker-{workers}.log", "w")  # noqa: SIM115 - closed below
            worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "ml", "--pool",
                                       "prefork", "--concurrency", str(workers), "--prefetch-multiplier", "1",
                                       "-n", f"scaleout{workers}@%h", "--without-gossip", "--without-mingle",
                                       "-l", "WARNING"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                for _ in range(120):
                    if app.control.ping(timeout=1.0, destination=[f"scaleout{workers}@{os.uname().nodename}"]):
                        break
                else:
                    raise SystemExit(f"worker with {workers} processes did not answer; see {log.name}")
                time.sleep(2)  # let every pool process finish importing
                t0 = time.perf_counter()
                # The run's start as a fanned-out night's other process does it (services.recommendations_prepare:
                # the blend, the recommender fitted once and stored), its recommend chunks collected to be sent with
                # the score chunks.
                run = services._pending_run(as_of=as_of, k=services.DEFAULT_K, chunks=len(ranges), night=None)
                recommend: list[dict] = []
                services.recommendations_prepare(run=run, horizon_days=services.DEFAULT_HORIZON_DAYS, ranges=ranges,
                                                 dispatch=lambda kind, sent=recommend, **kwargs: sent.append(kwargs))
                evaluated = time.perf_counter() - t0
                signatures = []
                for (id_from, id_to), part, rec in zip(ranges, parts, recommend, strict=True):
                    signatures.append(chunk_signature("score", as_of=as_of, version_id=version.pk, id_from=id_from,
                                                      id_to=id_to, bgnbd=bgnbd, matrix=part))
                    signatures.append(chunk_signature("recommend", **rec))
                from celery import group

                fanout_started = time.perf_counter()
                cpu_before = CpuSnapshot.now()
                group(signatures).apply_async()
                while True:
                    time.sleep(0.5)
                    run.refresh_from_db()
                    scored = JobRun.objects.filter(job="score_members", started_at__gte=run.created_at,
                                                   status=JobRun.Status.SUCCEEDED).count()
                    failed = JobRun.objects.filter(started_at__gte=run.created_at, status=JobRun.Status.FAILED)
                    if failed.exists():
                        raise SystemExit(f"a chunk failed: {failed.first().error[:2000]}")
                    if run.is_current and scored >= len(ranges):
                        break
                wall = time.perf_counter() - fanout_started
                cores = CpuUse.between(cpu_before, CpuSnapshot.now(), wall)
                walls[workers] = wall
                jobs = JobRun.objects.filter(started_at__gte=run.created_at, job__in=["score_members", "recommend"])
                cost: dict[str, list[float]] = {"score_members": [], "recommend": []}
                for job in jobs:
                    cost[job.job].append((job.finished_at - job.started_at).total_seconds())
                total = sum(sum(v) for v in cost.values())
                speedup = walls[options.workers[0]] / wall if workers != options.workers[0] else 1.0
                print(f"\n{workers} worker process(es): fan-out {wall:.1f} s wall ({len(signatures)} chunk tasks; "
                      f"the run's start before it, serial: the blend and the recommender fitted once for the chunks, "
                      f"{evaluated:.1f} s, not in the figure; both {evaluated + wall:.1f} s); speed-up "
                      f"{speedup:.2f}x over {options.workers[0]}", flush=True)
                for name, seconds in cost.items():
                    if seconds:
                        print(f"  {name:<14} {len(seconds):>3} chunks: median {statistics.median(seconds):.2f} s, "
                              f"max {max(seconds):.2f} s, total {sum(seconds):.1f} s", flush=True)
                print(f"  chunk seconds in all {total:.1f} s -> floor for {workers} process(es) "
                      f"{total / workers:.1f} s; wall / floor {wall / (total / workers):.2f}; "
                      f"{len(ranges) * options.chunk_size / wall:,.0f} member ids/s", flush=True)
                if cores is not None:
                    print(f"  the machine during the fan-out: {cores.line()}", flush=True)
                    if workers == options.workers[0]:
                        # The same CPU spread over every core: the most any number of processes can gain here.
                        ceiling = cores.cores / cores.cores_busy
                    elif ceiling is not None:
                        print(f"  this machine's ceiling, from the first fan-out's CPU on {cores.cores} cores: "
                              f"{ceiling:.2f}x; the speed-up is {speedup / ceiling:.0%} of it", flush=True)
            finally:
                # Cold shutdown: the report warm-up the last chunk enqueued is not part of the fan-out; drop it.
                worker.send_signal(signal.SIGQUIT)
                worker.wait(timeout=60)
                log.close()
                redis.Redis.from_url(broker).flushdb()
    finally:
        for part in parts:
            artifacts.delete(part)
        connection.close()
        if not options.keep:
            _admin(f"DROP DATABASE IF EXISTS {options.copy_db} WITH (FORCE)")
    print(f"\nload average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
