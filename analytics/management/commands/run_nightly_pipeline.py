from __future__ import annotations

from django.core.management.base import BaseCommand

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services


class Command(BaseCommand):
    help = "Run the nightly pipeline inline: engagement → segments → propensity → recommendations."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of")
        parser.add_argument("--horizon-days", type=int, default=services.DEFAULT_HORIZON_DAYS)

    def handle(self, *args, **options) -> None:
        result = services.nightly_pipeline(as_of=parse_as_of(options["as_of"]), horizon_days=options["horizon_days"])
        self.stdout.write(f"Nightly pipeline done: {result}")
