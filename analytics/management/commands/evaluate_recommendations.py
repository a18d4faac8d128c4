from __future__ import annotations

from analytics.management.commands._asof import fmt, parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = ("Offline evaluation on a time split: fit before as_of − horizon, test on the courses members took up in "
            "the horizon; prints the served blend vs popularity, time-decayed popularity, own items then popularity "
            "and item-kNN (NDCG@k, hit@k, recall@k).")

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
                          f"{window['test_until'][:10]}; {result['ours']['users']} members with new courses; "
                          f"served blend own/kNN/content/popularity = {result['blend']['weights']} "
                          f"({result['blend']['popularity']} popularity)")
        cols = [("ndcg", f"NDCG@{k}"), ("hit", f"hit@{k}"), ("recall", f"recall@{k}")]
        self.stdout.write("model".ljust(22) + "".join(label.rjust(14) for _, label in cols))
        for name, row in result.items():
            if name in ("window", "blend"):
                continue
            self.stdout.write(name.ljust(22) + "".join(fmt(row.get(c)).rjust(14) for c, _ in cols))
