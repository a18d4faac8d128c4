"""MRR movements reconcile on the demo platform for every month (a module of its own: the seeded demo is shared by
its tests and would leak into hand-built ledgers)."""
from __future__ import annotations

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.reports import metrics, revenue
from analytics.reports.common import start_of_day, trailing_months


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("seed_demo", "--members", "200", "--months", "12", "--seed", "5", "--today", "2026-06-15",
                     "--no-progress", "--flush", stdout=StringIO())
        yield
        call_command("flush", interactive=False, verbosity=0)


@pytest.mark.django_db
def test_mrr_movements_reconcile_on_the_demo_for_every_month(demo):
    end = start_of_day(datetime(2026, 6, 15).date())
    rows = revenue.movements(trailing_months(end, 13))
    assert sum(r.new_units + r.churned_units for r in rows) > 0
    for previous, row in zip(rows, rows[1:], strict=False):
        assert row.start_units == previous.end_units, row.label
    for row in rows:
        assert row.start_units + row.new_units + row.expansion_units - row.contraction_units - row.churned_units \
            + row.reactivated_units == row.end_units, row.label
        # The end agrees with the overview's MRR and paying members, computed by a different query.
        point = metrics.paying_at([row.month.end])[0]
        assert row.amount("end") == point.mrr, row.label
        assert row.paying_end == point.paying_members, row.label
