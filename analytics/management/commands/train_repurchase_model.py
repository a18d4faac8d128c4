from __future__ import annotations

from analytics.management.commands._asof import fmt, parse_as_of
from analytics.scoring import services
from config.commands import BaseCommand

COLUMNS = ["roc_auc", "average_precision", "brier", "lift_top_decile", "base_rate", "n"]


def _ci(metrics: dict) -> str:
    ci = (metrics or {}).get("ci") or {}
    auc = ci.get("roc_auc")
    diff = ci.get("auc_diff")
    parts = []
    if auc:
        parts.append(f"AUC 95% CI [{auc[0]:.4f}, {auc[1]:.4f}]")
    if diff:
        parts.append(f"ours − this [{diff[0]:+.4f}, {diff[1]:+.4f}]")
    return "; ".join(parts)


def metrics_table(version) -> list[str]:
    candidates = version.metrics.get("candidates", {})
    rows = [("served: " + version.algorithm, candidates.get(version.algorithm, version.metrics))]
    for name, metrics in candidates.items():
        if name != version.algorithm:
            kind = "baseline" if name in version.baselines else "candidate"
            rows.append((f"{kind}: {name}", metrics))
    width = max(len(r[0]) for r in rows) + 2
    lines = ["model".ljust(width) + "".join(c.rjust(18) for c in COLUMNS)]
    for name, metrics in rows:
        lines.append(name.ljust(width) + "".join(fmt(metrics.get(c, "")).rjust(18) for c in COLUMNS)
                     + "   " + _ci(metrics))
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
        m = v.metrics
        self.stdout.write(f"ModelVersion {v.pk} ({v.algorithm}, {m.get('served_kind')}), as_of {as_of.isoformat()}, "
                          f"horizon {v.horizon_days} days")
        validation = f"{v.validation_cutoff:%Y-%m-%d}" if v.validation_cutoff else "none"
        self.stdout.write(f"selection windows: {', '.join(m.get('train_windows', []))}; validation cutoff: "
                          f"{validation} (labels up to {as_of:%Y-%m-%d}); {m.get('train_rows')} training rows")
        self.stdout.write(f"refitted on: {', '.join(m.get('refit_cutoffs', [])) or '—'} ({m.get('refit_rows')} rows)")
        if v.notes:
            for line in v.notes.splitlines():
                self.stdout.write(self.style.WARNING(line))
        self.stdout.write("Validation metrics (later window than any selection window; served = best ROC AUC):")
        for line in metrics_table(v):
            self.stdout.write("  " + line)
        top = list(v.feature_importance.items())[:8]
        self.stdout.write("top features: " + ", ".join(f"{k} ({val:+.3f})" for k, val in top))
        self.stdout.write("PROMOTED to serving." if outcome.promoted else "Not promoted.")
