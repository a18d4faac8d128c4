from __future__ import annotations

from django.core.management.base import BaseCommand

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services


class Command(BaseCommand):
    help = "Compute top-K course recommendations per member at --as-of; write member_id,rank,product_id,score,reason."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of")
        parser.add_argument("--k", type=int, default=services.DEFAULT_K)
        parser.add_argument("--out", required=True)

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        run = services.recommendations_compute(as_of=as_of, k=options["k"])
        table = services.recommendations_table(run)
        table.to_csv(options["out"], index=False)
        self.stdout.write(f"Recommendation run {run.pk}: {len(table)} rows for {table['member_id'].nunique()} members "
                          f"→ {options['out']}")
