from __future__ import annotations

import os
import threading

from django.core.management.base import CommandError

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services
from analytics.scoring.processes import NightProcesses, processes_usable
from config.commands import BaseCommand


class Command(BaseCommand):
    help = ("Run the nightly pipeline now, in this process and --jobs - 1 forked ones: recommendations, the feature "
            "matrix, propensity, engagement, segments.")
    # Django's system checks import every URLconf (views, the API, the schema): 0.9 s of a night's 13–20 s at 100,000
    # members (issue 19). The nightly command is cron's, as the Celery task is the worker's: neither gunicorn nor the
    # worker runs them, and `manage.py check --deploy` (README "Production") does at deploy.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")
        parser.add_argument("--horizon-days", type=int, default=services.DEFAULT_HORIZON_DAYS,
                            help="Days after as-of in which a paid order counts as a repurchase (the label window).")
        parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                            help="Processes the night runs in, as a Celery worker with that many processes would run "
                                 "it (default: 2, or 1 on one core; each takes up to 1.2 GB at 100,000 members). "
                                 "1: every part one after another here.")

    def handle(self, *args, **options) -> None:
        jobs = options["jobs"]
        if jobs < 1:
            raise CommandError("--jobs: give 1 or more processes.")
        # The chunks come in a multiple of the processes that share them (services.member_chunks); whether there is
        # more than one does not depend on that.
        chunks = max(len(services.member_chunks(processes=jobs)), 1)
        why_not = processes_usable() if jobs > 1 and chunks > 1 else None
        if why_not:
            self.stderr.write(f"--jobs {jobs}: running in one process ({why_not}).")
            chunks = len(services.member_chunks(processes=1))
        processes = jobs if chunks > 1 and not why_not else 1
        as_of = parse_as_of(options["as_of"])
        bar = self.progress(range(2 * chunks), total=2 * chunks, desc="score + recommend", unit="chunk")
        if processes > 1:
            # As the worker runs it: the recommendation side and the score chunks in the other processes. Parts end
            # in the pool's thread as well as here: one tick at a time.
            ticking = threading.Lock()

            def tick(n: int) -> None:
                with ticking:
                    for _ in range(n):
                        next(bar, None)

            with NightProcesses(jobs, progress=tick) as pool:
                result = services.nightly_pipeline(as_of=as_of, horizon_days=options["horizon_days"],
                                                   dispatch=pool.dispatch, fan_out=True, processes=processes)
                pool.finish()
        else:
            # One chunk, or --jobs 1: the chunks one after another here, each ticking the bar.
            result = services.nightly_pipeline(as_of=as_of, horizon_days=options["horizon_days"],
                                               progress=lambda: next(bar, None), processes=1)
        for _ in bar:
            pass
        self.stdout.write(f"Nightly pipeline done: {result}")
