from __future__ import annotations

from analytics.management.commands._asof import parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Run the nightly pipeline inline: recommendations, the feature matrix, propensity, engagement, segments."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")
        parser.add_argument("--horizon-days", type=int, default=services.DEFAULT_HORIZON_DAYS,
                            help="Days after as-of in which a paid order counts as a repurchase (the label window).")

    def handle(self, *args, **options) -> None:
        # Inline: the chunks (the long part) run one after another here and tick a bar with an ETA.
        chunks = max(len(services.member_chunks()), 1)
        bar = self.progress(range(2 * chunks), total=2 * chunks, desc="score + recommend", unit="chunk")
        result = services.nightly_pipeline(as_of=parse_as_of(options["as_of"]), horizon_days=options["horizon_days"],
                                           progress=lambda: next(bar, None))
        for _ in bar:
            pass
        self.stdout.write(f"Nightly pipeline done: {result}")
