"""`make run`'s one step after migrate: a demo platform that already shows what the product does.

Each piece runs only when missing, so a second `make run` starts at once: seed the platform (members'
seed_demo --if-empty), run the nightly analytics pipeline once if nothing has been scored yet, then create the
default reminder rules and campaigns with one simulated past campaign whose uplift is measured.
"""
from __future__ import annotations

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from analytics.models import PropensityScore


class Command(BaseCommand):
    help = "Seed the demo platform and run the analytics once, each only if missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=1500)
        parser.add_argument("--months", type=int, default=12)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: object, **options: object) -> None:
        started = time.monotonic()
        call_command("seed_demo", "--if-empty", members=options["members"], months=options["months"],
                     seed=options["seed"], stdout=self.stdout, stderr=self.stderr)
        if not PropensityScore.objects.exists():
            self.stdout.write("Running the analytics pipeline once (engagement, segments, propensity, recommendations)…")
            call_command("run_nightly_pipeline", stdout=self.stdout, stderr=self.stderr)
        call_command("setup_demo_actions", "--simulate", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(f"Demo platform ready in {time.monotonic() - started:.0f} s.")
