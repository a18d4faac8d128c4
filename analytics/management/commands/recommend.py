from __future__ import annotations

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Compute top-K course recommendations per member at --as-of; write member_id,rank,product_id,score,reason."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")
        parser.add_argument("--k", type=int, default=services.DEFAULT_K, help="Courses to recommend per member.")
        parser.add_argument("--out", required=True, help="CSV file to write (member, rank, course, score, reasons).")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        # services.recommendations_compute, split by member range as the nightly run does, so a bar can show an ETA.
        ranges = services.member_chunks(processes=1) or [(None, None)]  # one after another, here
        run = services.recommendations_start(as_of=as_of, k=options["k"], chunks=len(ranges))
        for id_from, id_to in self.progress(ranges, desc="recommending", unit="chunk"):
            services.recommendations_chunk(run=run, id_from=id_from, id_to=id_to)
        run.refresh_from_db()
        table = services.recommendations_table(run)
        table.to_csv(options["out"], index=False)
        self.stdout.write(f"Recommendation run {run.pk}: {len(table)} rows for {table['member_id'].nunique()} members "
                          f"→ {options['out']}")
