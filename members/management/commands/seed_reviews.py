"""Add demo reviews and referrals to the seeded platform (issue 8). Run after seed_demo; --if-empty skips a
database that already has reviews, so `make run` can call it every time."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from config.commands import BaseCommand
from members.demo.reviews import seed_reviews_and_referrals
from members.models import Review


class Command(BaseCommand):
    help = "Seed demo course reviews and member referrals."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=7, help="Random seed (same seed, same data).")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the data already exists.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Review.objects.exists():
            self.stdout.write("Reviews exist; skipping.")
            return
        result = seed_reviews_and_referrals(seed=options["seed"])
        self.stdout.write(f"reviews={result.reviews} helpful={result.helpful_marks} referrals={result.referrals} "
                          f"rewarded={result.rewarded}")
