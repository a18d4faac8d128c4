"""Bring existing campaigns and reminder rules inside the check constraints 0006 adds, so that migration cannot fail
on rows the old admin accepted. Nothing is invented: inverted ranges are swapped, out-of-range risks clamped to
[0, 1], unknown segments cleared (the rule switched off, the campaign back to draft: cleared, they would match
everyone), and a campaign that could never have run (no discount for its type, or a segment
campaign without a segment) goes back to draft for staff to finish. Reverse: nothing to undo (the repaired values
are valid under the old schema too)."""

from django.db import migrations

SEGMENT_NAMES = ["Champions", "Loyal", "Promising", "New", "Needs attention", "At risk", "Hibernating", "Lost",
                 "All members"]


def _clamp(value):
    return None if value is None else min(1.0, max(0.0, value))


def repair(apps, schema_editor):
    Campaign = apps.get_model("analytics", "Campaign")
    ReminderRule = apps.get_model("analytics", "ReminderRule")
    for c in Campaign.objects.all().iterator():
        before = (c.starts_at, c.ends_at, c.min_churn_risk, c.max_churn_risk, c.max_probability, c.segment, c.status,
                  c.holdout_share)
        if c.ends_at is not None and c.ends_at <= c.starts_at:
            c.starts_at, c.ends_at = min(c.starts_at, c.ends_at), max(c.starts_at, c.ends_at)
            if c.ends_at == c.starts_at:
                c.ends_at = None
        c.min_churn_risk, c.max_churn_risk = _clamp(c.min_churn_risk), _clamp(c.max_churn_risk)
        if c.min_churn_risk is not None and c.max_churn_risk is not None and c.min_churn_risk > c.max_churn_risk:
            c.min_churn_risk, c.max_churn_risk = c.max_churn_risk, c.min_churn_risk
        c.max_probability = _clamp(c.max_probability)
        if c.holdout_share is not None:
            from decimal import Decimal

            c.holdout_share = min(Decimal("0.99"), max(Decimal("0.01"), c.holdout_share))
        if c.segment and c.segment not in SEGMENT_NAMES:
            # It matched nobody; cleared, it would match everybody, so it waits in draft for staff to choose.
            c.segment = ""
            c.status = "draft"
        if c.status not in ("draft", "active", "paused", "finished"):
            c.status = "draft"
        percent_ok = c.discount_type == "percent" and c.percent_off is not None and 0 < c.percent_off <= 100
        fixed_ok = c.discount_type == "fixed" and c.amount_off is not None and c.amount_off > 0
        if not (percent_ok or fixed_ok) or (c.audience == "segment" and not c.segment):
            c.status = "draft"
        if (c.starts_at, c.ends_at, c.min_churn_risk, c.max_churn_risk, c.max_probability, c.segment, c.status,
                c.holdout_share) != before:
            c.save()
    for r in ReminderRule.objects.all().iterator():
        before = (r.min_churn_risk, r.segment, r.days_before, r.billing_period, r.is_active)
        r.min_churn_risk = _clamp(r.min_churn_risk)
        if r.segment and r.segment not in SEGMENT_NAMES:
            # Same reasoning: an unknown segment matched nobody, so the cleared rule is switched off, not widened.
            r.segment = ""
            r.is_active = False
        r.days_before = min(r.days_before, 366)
        if r.billing_period not in ("any", "month", "year"):
            r.billing_period = "any"
        if (r.min_churn_risk, r.segment, r.days_before, r.billing_period, r.is_active) != before:
            r.save()


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0007_staff_capabilities_and_field_choices"),
    ]

    operations = [
        migrations.RunPython(repair, migrations.RunPython.noop),
    ]
