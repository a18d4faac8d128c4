from __future__ import annotations

from analytics.management.commands._asof import fmt, parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand

COLUMNS = ["roc_auc", "average_precision", "brier", "lift_top_decile", "base_rate", "n"]


def metrics_table(version) -> list[str]:
    rows = [("ours: " + version.algorithm, version.metrics)]
    for name, metrics in version.metrics.get("candidates", {}).items():
        if name != version.algorithm:
            rows.append(("candidate: " + name, metrics))
    rows.append(("baseline: recency+frequency", version.baselines.get("recency_frequency", {})))
    rows.append(("baseline: BG/NBD", version.baselines.get("bgnbd", {})))
    width = max(len(r[0]) for r in rows) + 2
    lines = ["model".ljust(width) + "".join(c.rjust(18) for c in COLUMNS)]
    for name, metrics in rows:
        lines.append(name.ljust(width) + "".join(fmt(metrics.get(c, "")).rjust(18) for c in COLUMNS))
    return lines


class Command(BaseCommand):
    help = "Train the repurchase/renewal propensity model at --as-of, print ours vs baselines, store the version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Cut-off date or timestamp (ISO 8601); only data before it is read. Default: today 00:00 UTC.")
        parser.add_argument("--horizon-days", type=int, default=services.DEFAULT_HORIZON_DAYS,
                            help="Days after as-of in which a paid order counts as a repurchase (the label window).")
        parser.add_argument("--no-promote", action="store_true", help="Store the version but never promote it.")

    def handle(self, *args, **options) -> None:
        as_of = parse_as_of(options["as_of"])
        outcome = services.repurchase_train(as_of=as_of, horizon_days=options["horizon_days"],
                                            promote=not options["no_promote"])
        v = outcome.version
        plan = outcome.result.plan
        self.stdout.write(f"ModelVersion {v.pk} ({v.algorithm}), as_of {as_of.isoformat()}, horizon {v.horizon_days} days")
        self.stdout.write(f"train cutoffs: {', '.join(c[:10] for c in v.train_cutoffs)}; "
                          f"validation cutoff: {v.validation_cutoff:%Y-%m-%d} (labels up to {as_of:%Y-%m-%d}); "
                          f"{v.metrics.get('train_rows')} training rows")
        if plan.notes:
            self.stdout.write(self.style.WARNING(plan.notes))
        self.stdout.write("Validation metrics (time split, later cutoff than any training cutoff):")
        for line in metrics_table(v):
            self.stdout.write("  " + line)
        top = list(v.feature_importance.items())[:8]
        self.stdout.write("top features: " + ", ".join(f"{k} ({val:+.3f})" for k, val in top))
        self.stdout.write(("PROMOTED to serving. " if outcome.promoted else "Not promoted. ") + (v.notes.splitlines() or [""])[-1])
