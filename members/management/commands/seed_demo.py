"""Seed the demo platform: `manage.py seed_demo --members 1500 --months 12 --seed 7`.

The generator (members/demo/generator.py) simulates the behaviour model written down in docs/DEMO_MODEL.md and
bulk-inserts the rows; this command only parses options, guards against double seeding and reports.
"""
from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from config.commands import BaseCommand
from members.demo import generator
from members.models import Course, User


def _today(value: str | None) -> datetime:
    """The one time anchor of a run: midnight UTC of --today (default: the real today)."""
    if value:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--today must be YYYY-MM-DD, not {value!r}") from None
    else:
        day = datetime.now(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class Command(BaseCommand):
    help = "Generate a believable demo platform (courses, tiers, members, a year of behaviour) from a seed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=1500, help="Number of members to generate.")
        parser.add_argument("--months", type=int, default=12, help="Months of history up to --today.")
        parser.add_argument("--seed", type=int, default=7, help="Random seed (same seed, same platform).")
        parser.add_argument("--today", help="Anchor date YYYY-MM-DD (default: today, UTC); the history ends here.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the catalogue already has courses.")
        parser.add_argument("--flush", action="store_true", help="Empty the whole database first (manage.py flush).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Course.objects.exists():
            self.stdout.write("The database already has a catalogue; not seeding (drop --if-empty or use --flush).")
            return
        if options["flush"]:
            call_command("flush", interactive=False, verbosity=0)
        elif User.objects.filter(email__in=[generator.STAFF_EMAIL, generator.LEARNER_EMAIL]).exists():
            raise CommandError("Demo data is already here; run with --flush to start over.")
        today = _today(options["today"])
        months = options["months"]
        bar = tqdm(total=months + 5, file=sys.stderr, disable=options["no_progress"] or self.quiet, desc="seeding", unit="step")

        def progress(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        started = time.perf_counter()
        try:
            result = generator.seed(members=options["members"], months=months, seed=options["seed"], today=today,
                                    progress=progress)
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        total = sum(result.counts.values())
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {result.members} members over {months} months ending {today:%Y-%m-%d}: {total:,} rows in "
            f"{elapsed:.1f} s."
        ))
        if options["verbosity"] > 1:
            for label, count in sorted(result.counts.items()):
                self.stdout.write(f"  {label:<28} {count:>9,}")
        call_command("demo_logins", stdout=self.stdout)
