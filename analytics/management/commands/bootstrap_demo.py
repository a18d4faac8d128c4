"""`make run`'s one step after migrate: a demo platform that already shows what the product does.

Each piece runs only when missing, so a second `make run` starts at once: seed the platform (members'
seed_demo --if-empty), run the nightly analytics pipeline one horizon ago and today if nothing has been scored yet, then create the
default reminder rules and campaigns with one simulated past campaign whose uplift is measured.
"""
from __future__ import annotations

import time
from datetime import timedelta

from django.core.management import call_command
from django.core.management.base import CommandParser

from analytics.models import PropensityScore
from analytics.scoring.services import DEFAULT_HORIZON_DAYS, start_of_day
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Seed the demo platform and run the analytics once, each only if missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=1500, help="Members to seed when the database is empty.")
        parser.add_argument("--months", type=int, default=12, help="Months of history to seed.")
        parser.add_argument("--seed", type=int, default=7, help="Random seed (same seed, same platform).")

    def handle(self, *args: object, **options: object) -> None:
        started = time.monotonic()
        call_command("seed_demo", "--if-empty", members=options["members"], months=options["months"],
                     seed=options["seed"], quiet=self.quiet, stdout=self.stdout, stderr=self.stderr)
        if not PropensityScore.objects.exists():
            # First a run one horizon ago: its model is trained only on data before that date and scores members as
            # they were then, so by today its outcome window has closed and the churn page can show live
            # calibration (predicted vs what members actually bought since). Then today's model is trained and
            # promoted if it beats that one, and today's run scores with the serving model, as every night.
            today = start_of_day()
            past = today - timedelta(days=DEFAULT_HORIZON_DAYS)
            self.stdout.write(f"Running the analytics pipeline at {past:%Y-%m-%d} (one horizon ago, for calibration)…")
            call_command("run_nightly_pipeline", as_of=past.isoformat(), quiet=self.quiet, stdout=self.stdout,
                         stderr=self.stderr)
            self.stdout.write("Training today's model, then running the analytics pipeline for today…")
            call_command("train_repurchase_model", as_of=today.isoformat(), stdout=self.stdout, stderr=self.stderr)
            call_command("run_nightly_pipeline", as_of=today.isoformat(), quiet=self.quiet, stdout=self.stdout,
                         stderr=self.stderr)
        call_command("setup_demo_actions", "--simulate", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(f"Demo platform ready in {time.monotonic() - started:.0f} s.")
