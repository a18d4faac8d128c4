from __future__ import annotations

from analytics.management.commands._asof import fmt, parse_as_of
from analytics.ml import evaluation
from config.commands import BaseCommand


def _ci(values: list[float] | None) -> str:
    return f"[{values[0]:.4f}, {values[1]:.4f}]" if values else ""


class Command(BaseCommand):
    help = ("Held-out evaluation: train everything as of as_of − horizon, judge on [as_of − horizon, as_of). "
            "Repurchase (AUC, AP, Brier, top-decile lift, bootstrap CIs) vs BG/NBD, RFM logistic regression and "
            "recent-activity rules; recommendations (NDCG@k, hit@k) vs popularity, time-decayed popularity, own "
            "items then popularity, item-kNN.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", required=True,
                            help="the cutoff: models train on history before it and are scored on the window after")
        parser.add_argument("--horizon", type=int, default=30, help="label and test window, days")
        parser.add_argument("--k", type=int, default=10, help="list length for precision@k, recall@k and NDCG@k")
        parser.add_argument("--skip-recommendations", action="store_true",
                            help="evaluate the repurchase model only (faster)")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        h, k = options["horizon"], options["k"]
        rep = evaluation.repurchase_evaluation(as_of, h)
        w = self.stdout.write
        w(f"Repurchase within {rep['horizon_days']} days of {rep['test_cutoff']:%Y-%m-%d} (test labels up to "
          f"{as_of:%Y-%m-%d}); trained and selected before {rep['test_cutoff']:%Y-%m-%d}; served: {rep['served']} "
          f"({rep['served_kind']})")
        if rep["notes"]:
            w(self.style.WARNING(rep["notes"]))
        if rep["validation"]:
            w("selection (validation ROC AUC, window before the test cutoff): " + ", ".join(
                f"{name} {fmt(auc)}" for name, auc in rep["validation"].items()))
        cols = ["roc_auc", "average_precision", "brier", "lift_top_decile"]
        w("model".ljust(18) + "".join(c.rjust(28) for c in cols) + "   AUC ours − model (95% CI)   n   base rate")
        for name, m in rep["metrics"].items():
            cells = "".join(f"{fmt(m.get(c))} {_ci(m['ci'].get(c))}".rjust(28) for c in cols)
            diff = _ci(m["ci"].get("auc_diff")) if name != "ours" else ""
            w(name.ljust(18) + cells + "   " + diff.ljust(26) + f"  {m['n']}  {fmt(m['base_rate'])}")
        if options["skip_recommendations"]:
            return
        rec = evaluation.recommendation_evaluation(as_of, h, k)
        m = rec["metrics"]
        w("")
        w(f"Recommendations: fitted at {rec['test_cutoff']:%Y-%m-%d}, test until {as_of:%Y-%m-%d}; blend tuned on "
          f"{rec['validation_cutoff']:%Y-%m-%d}..{rec['test_cutoff']:%Y-%m-%d} (NDCG@{k} {rec['validation_ndcg']}); "
          f"weights own/kNN/content/popularity = {rec['weights']} ({rec['popularity']} popularity); {rec['items']} items, {rec['rebuyable_items']} "
          f"re-buyable; {m['ours']['users']} members with something new")
        w("model".ljust(22) + "".join(label.rjust(26) for label in (f"NDCG@{k}", f"hit@{k}", f"recall@{k}")))
        for name, r in m.items():
            w(name.ljust(22) + "".join(f"{fmt(r.get(c))} {_ci(r.get(c + '_ci'))}".rjust(26)
                                        for c in ("ndcg", "hit", "recall")))
