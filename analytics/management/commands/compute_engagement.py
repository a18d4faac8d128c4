from __future__ import annotations

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Compute engagement scores (0–100) for every member at --as-of (default: today 00:00)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        rows = services.engagement_compute(as_of=as_of)
        from analytics.models import JobRun

        run = JobRun.objects.filter(job="compute_engagement").first()
        self.stdout.write(f"{rows} engagement scores at {as_of.isoformat()}. {run.message if run else ''}")
