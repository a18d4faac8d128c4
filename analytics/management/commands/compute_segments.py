from __future__ import annotations

from collections import Counter

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Cluster members into segments (KMeans, k by silhouette) at --as-of."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        run = services.segments_compute(as_of=as_of)
        self.stdout.write(f"Segment run {run.pk} at {as_of.isoformat()}: k={run.k} chosen by {run.criterion}")
        if run.criterion_scores:  # a night that keeps an earlier night's k measures none
            self.stdout.write("silhouette by k: " + ", ".join(f"k={k}: {v}" for k, v in run.criterion_scores.items()))
        sizes = Counter(run.assignments.values_list("label", flat=True))
        for label, size in sizes.most_common():
            self.stdout.write(f"  {label:<16} {size:>7}")
