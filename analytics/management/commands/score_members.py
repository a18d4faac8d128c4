from __future__ import annotations

from analytics.management.commands._asof import parse_as_of
from analytics.models import EngagementScore, SegmentRun
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = ("Score every member at --as-of and write member_id,repurchase_probability,engagement_score,segment,"
            "top_reasons to --out (engagement and segments are computed for as_of if missing).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")
        parser.add_argument("--horizon-days", type=int, default=None,
                            help="Label window of the model to use; default: the serving model's.")
        parser.add_argument("--out", required=True, help="CSV file to write (one row per member).")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        if not EngagementScore.objects.filter(as_of=as_of).exists():
            services.engagement_compute(as_of=as_of)
        if not SegmentRun.objects.filter(as_of=as_of).exists():
            services.segments_compute(as_of=as_of)
        version = services.model_for(as_of, options["horizon_days"])
        chunks = services.member_chunks(processes=1) or [(None, None)]  # one after another, here
        for id_from, id_to in self.progress(chunks, desc="scoring", unit="chunk"):
            services.propensity_score(as_of=as_of, version=version, id_from=id_from, id_to=id_to)
        table = services.scores_table(as_of=as_of, version=version)
        table.to_csv(options["out"], index=False)
        self.stdout.write(f"{len(table)} members scored with model v{version.pk} ({version.algorithm}, "
                          f"{version.horizon_days}-day horizon) → {options['out']}")
