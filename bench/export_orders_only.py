"""Export a platform's products and orders as `import_platform_data` CSVs (docs/IMPORT.md): an orders-only copy.

    VAR_DIR=/tmp/ml_demo .venv/bin/python bench/export_orders_only.py --out /tmp/orders_only_csv
    VAR_DIR=/tmp/ml_orders_only .venv/bin/python manage.py import_platform_data \
        --products /tmp/orders_only_csv/products.csv --orders /tmp/orders_only_csv/orders.csv

Reads the database the settings point at (VAR_DIR / DATABASE_URL) and writes products.csv (every non-generic course
and every tier, `kind` course/tier, a tier's `price` being its monthly price) and orders.csv (every paid, refunded
and failed order: courses and tier orders with their billing_period). Members, events, enrollments, subscriptions,
lessons and community activity are left out on purpose: the copy is what a platform holding only a catalogue and
a payment history can give. Used to measure the analytics on such a platform (docs/ML_RESULTS.md, "Orders-only
platform").
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for products.csv and orders.csv")
    args = parser.parse_args()

    import django

    django.setup()
    from members.models import Course, MembershipTier, Order

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def stamp(value) -> str:
        return value.astimezone(UTC).isoformat() if value else ""

    products = 0
    with open(out / "products.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["product_id", "kind", "title", "price", "currency", "tags", "published_at"])
        for c in Course.objects.filter(is_generic=False).order_by("id").iterator():
            writer.writerow([f"c-{c.pk}", "course", c.title[:200], c.price, c.currency,
                             ";".join(([c.topic] if c.topic else []) + [str(t) for t in c.tags if t != c.topic]),
                             stamp(c.published_at)])
            products += 1
        for t in MembershipTier.objects.order_by("id").iterator():
            writer.writerow([f"t-{t.pk}", "tier", t.name[:80], t.monthly_price, t.currency, "", ""])
            products += 1

    orders = 0
    statuses = {Order.Status.PAID: "paid", Order.Status.REFUNDED: "refunded", Order.Status.FAILED: "failed"}
    qs = Order.objects.filter(status__in=list(statuses)).order_by("id")
    with open(out / "orders.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["order_id", "member_id", "product_id", "amount", "currency", "ordered_at", "status",
                         "quantity", "billing_period"])
        for o in qs.values("id", "member_id", "kind", "course_id", "tier_id", "amount_paid", "currency", "paid_at",
                           "created_at", "status", "quantity", "billing_period").iterator():
            if o["kind"] == Order.Kind.COURSE:
                product, period = f"c-{o['course_id']}", ""
            else:
                product, period = f"t-{o['tier_id']}", o["billing_period"] or "month"
            # Paid and refunded orders are dated by their payment (import sets paid_at = ordered_at), failed ones by
            # their creation.
            when = o["paid_at"] if o["status"] != Order.Status.FAILED and o["paid_at"] else o["created_at"]
            writer.writerow([f"o-{o['id']}", f"m-{o['member_id']}", product, o["amount_paid"], o["currency"],
                             stamp(when), statuses[o["status"]], o["quantity"], period])
            orders += 1
    print(f"wrote {products} products to {out / 'products.csv'} and {orders} orders to {out / 'orders.csv'}")


if __name__ == "__main__":
    main()
