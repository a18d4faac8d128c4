from __future__ import annotations

from analytics.management.commands._asof import fmt, parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = ("Offline evaluation on a time split: fit before as_of − horizon, test on the courses members took up in "
            "the horizon; prints ours vs popularity (precision@k, recall@k, NDCG@k, coverage).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")
        parser.add_argument("--horizon-days", type=int, default=services.DEFAULT_HORIZON_DAYS,
                            help="Days after as-of whose purchases are the held-out truth.")
        parser.add_argument("--k", type=int, default=services.DEFAULT_K, help="Recommendations per member (the k of precision@k).")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        k = options["k"]
        result = services.recommendations_evaluate(as_of=as_of, horizon_days=options["horizon_days"], k=k)
        window = result["window"]
        self.stdout.write(f"train before {window['train_before'][:10]}, test {window['horizon_days']} days until "
                          f"{window['test_until'][:10]}; {result['ours']['users']} members with new courses")
        cols = [("precision", f"precision@{k}"), ("recall", f"recall@{k}"), ("ndcg", f"NDCG@{k}"),
                ("coverage", "coverage")]
        self.stdout.write("model".ljust(14) + "".join(label.rjust(14) for _, label in cols))
        for name in ("ours", "popularity"):
            self.stdout.write(name.ljust(14) + "".join(fmt(result[name][c]).rjust(14) for c, _ in cols))
