"""The feature matrix's event reads and the BG/NBD likelihood, each against the plain formulation it replaced.

last_event probes the (member, time) index per member and a sampled event_counts is driven from the sampled
members; the likelihood computes the terms of x once per distinct x. Each must give exactly what the plain GROUP BY
or the per-element computation gives, on SQLite and on PostgreSQL.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.db.models import Count, Max, Min, Q, Sum
from pandas.testing import assert_frame_equal

from analytics.ml import btyd, datasets
from analytics.models import Event
from tests.members.factories import UserFactory

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _grouped_last_event(as_of: datetime, rng: datasets.MemberRange) -> pd.DataFrame:
    """The GROUP BY last_event used to run."""
    qs = rng.apply(Event.objects.filter(occurred_at__lt=as_of, member_id__isnull=False))
    rows = qs.values("member_id").annotate(last=Max("occurred_at")).order_by("member_id").values_list(
        "member_id", "last")
    frame = pd.DataFrame.from_records(list(rows), columns=["member_id", "last_event_at"])
    frame["last_event_at"] = pd.to_datetime(frame["last_event_at"], utc=True)
    return frame


def _filtered_event_counts(as_of: datetime, rng: datasets.MemberRange) -> pd.DataFrame:
    """event_counts with the sample as a filter on the events, as it used to run."""
    qs = rng.apply(Event.objects.filter(occurred_at__lt=as_of, occurred_at__gte=as_of - 90 * DAY,
                                        member_id__isnull=False))
    rows = qs.values("member_id", "kind").annotate(
        n7=Count("id", filter=Q(occurred_at__gte=as_of - 7 * DAY)), n90=Count("id"), q90=Sum("quantity"),
        last=Max("occurred_at")).values_list("member_id", "kind", "n7", "n90", "q90", "last")
    return pd.DataFrame.from_records(list(rows), columns=["member_id", "kind", "n7", "n90", "q90", "last"])


@pytest.fixture
def history(db) -> list[int]:
    """Six members: events before and after as_of, inside and outside the 90-day window, one member with none, one
    staff member with events; several kinds and quantities, two events at the same instant."""
    members = [UserFactory(date_joined=AS_OF - 400 * DAY) for _ in range(5)]
    members.append(UserFactory(is_staff=True, date_joined=AS_OF - 400 * DAY))
    events = []
    for n, member in enumerate(members):
        if n == 2:
            continue  # no events at all
        for k, days_before in enumerate([-3, 0, 0.5, 2, 6, 25, 80, 95, 300][n % 3:]):
            kind = ["lesson_viewed", "page_viewed", "email_opened"][(n + k) % 3]
            events.append(Event(member=member, kind=kind, occurred_at=AS_OF - days_before * DAY,
                                quantity=None if k % 2 else float(10 * k + n)))
    events.append(Event(member=members[0], kind="page_viewed", occurred_at=AS_OF - 2 * DAY, quantity=1.0))
    events.append(Event(member=None, kind="page_viewed", occurred_at=AS_OF - 2 * DAY))
    Event.objects.bulk_create(events)
    return [m.pk for m in members]


@pytest.mark.parametrize("as_of", [AS_OF, AS_OF - 50 * DAY, AS_OF - 1000 * DAY])
def test_last_event_is_the_grouped_maximum(history, as_of):
    ranges = [datasets.ALL, datasets.MemberRange(every=2), datasets.MemberRange(history[1], history[4])]
    for rng in ranges:
        expected = _grouped_last_event(as_of, rng)
        assert_frame_equal(datasets.last_event(as_of, rng), expected, check_dtype=False)
    if as_of == AS_OF:
        # The test had something to compare: every member with events has a last one, the staff member too.
        assert len(_grouped_last_event(as_of, datasets.ALL)) == 5


@pytest.mark.parametrize("probes", [datasets.FIRST_EVENT_KIND_PROBES, 1])
def test_the_first_event_is_the_plain_minimum(history, probes, monkeypatch):
    """_first_event_before probes the (kind, time) index kind by kind; it must give MIN(occurred_at). The first
    event overall is of the kind that sorts last, one kind has events only after the cutoffs tried; with more kinds
    than the probes allow, the plain aggregate runs."""
    monkeypatch.setattr(datasets, "FIRST_EVENT_KIND_PROBES", probes)
    Event.objects.bulk_create([Event(member=None, kind="zz_imported", occurred_at=AS_OF - 2000 * DAY),
                               Event(member=None, kind="aa_later", occurred_at=AS_OF + 10 * DAY)])
    for as_of in [AS_OF, AS_OF - 50 * DAY, AS_OF - 2000 * DAY, AS_OF - 2000 * DAY + timedelta(seconds=1),
                  AS_OF + 30 * DAY]:
        expected = Event.objects.filter(occurred_at__lt=as_of).aggregate(m=Min("occurred_at"))["m"]
        assert datasets._first_event_before(as_of) == expected, as_of
    assert datasets._first_event_before(AS_OF) == AS_OF - 2000 * DAY
    assert datasets._first_event_before(AS_OF - 2000 * DAY) is None
    kinds = set(Event.objects.values_list("kind", flat=True))
    # One id per kind, up to one kind past the probes: enough to know there are too many.
    ids = datasets._first_event_ids_by_kind(AS_OF)
    assert len(ids) == min(len(kinds), probes + 1)
    if probes > len(kinds):
        firsts = Event.objects.filter(pk__in=[pk for pk in ids if pk is not None])
        assert set(firsts.values_list("kind", flat=True)) == kinds - {"aa_later"}  # its events all come after


def test_no_events_no_first_event(db):
    assert datasets._first_event_ids_by_kind(AS_OF) == []
    assert datasets._first_event_before(AS_OF) is None


@pytest.mark.parametrize("every", [2, 3])
def test_a_sampled_event_count_is_the_filtered_one(history, every):
    rng = datasets.MemberRange(every=every)
    expected = _filtered_event_counts(AS_OF, rng).sort_values(["member_id", "kind"]).reset_index(drop=True)
    got = datasets.event_counts(AS_OF, rng)[["member_id", "kind", "n7", "n90", "q90", "last"]]
    got = got.sort_values(["member_id", "kind"]).reset_index(drop=True)
    assert len(got) > 0
    assert got["member_id"].tolist() == expected["member_id"].tolist()
    assert got["kind"].tolist() == expected["kind"].tolist()
    assert got["n7"].tolist() == expected["n7"].tolist() and got["n90"].tolist() == expected["n90"].tolist()
    assert got["q90"].tolist() == expected["q90"].fillna(0.0).astype(float).tolist()
    assert (pd.to_datetime(got["last"], utc=True) == pd.to_datetime(expected["last"], utc=True)).all()


def test_the_likelihood_by_distinct_repeat_counts_is_the_per_member_one():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 12, 5000).astype(float)
    tx = np.where(x > 0, rng.random(5000) * 40, 0.0)
    T = tx + rng.random(5000) * 20 + 1e-3
    counts = np.unique(x, return_inverse=True)
    for log_params in [np.zeros(4), np.array([1.5, -2.0, 0.3, 4.0]), rng.normal(size=4) * 3]:
        assert btyd._nll(log_params, x, tx, T, counts) == btyd._nll(log_params, x, tx, T)
    inputs = pd.DataFrame({"x": x, "t_x": tx, "T": T, "buyer": 1.0})
    assert btyd.fit(inputs)["fitted"] == 1.0


def _reads_and_threads(monkeypatch) -> list[tuple[str, str]]:
    import threading

    seen: list[tuple[str, str]] = []
    for name in ("event_counts", "last_event", "course_outcomes"):
        real = getattr(datasets, name)

        def spy(*args, _real=real, _name=name):
            seen.append((_name, threading.current_thread().name))
            return _real(*args)

        monkeypatch.setattr(datasets, name, spy)
    return seen


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_postgresql_reads_events_alongside_and_gives_the_same_snapshot(monkeypatch, settings):
    from tests.analytics.factories import make_platform

    platform = make_platform(members=40, days=200, seed=9)
    as_of = platform.start + timedelta(days=150)
    seen = _reads_and_threads(monkeypatch)
    alongside = datasets.snapshot(as_of)
    assert {name for name, _ in seen} == {"event_counts", "last_event", "course_outcomes"}
    if connection.vendor == "postgresql":
        assert all(thread.startswith("analytics-read") for _, thread in seen)
    else:  # SQLite reads in turn: two threads stepping rows slowed it down
        assert all(thread == "MainThread" for _, thread in seen)
    settings.ANALYTICS_READS_ALONGSIDE = False
    seen.clear()
    one_by_one = datasets.snapshot(as_of)
    assert seen and all(thread == "MainThread" for _, thread in seen)
    for field in ("members", "orders", "event_counts", "last_event", "enrollments", "subscriptions", "outcomes"):
        assert_frame_equal(getattr(alongside, field), getattr(one_by_one, field))
    assert len(alongside.event_counts) > 0 and len(alongside.last_event) > 0


def test_inside_a_transaction_every_read_runs_on_this_connection(history, monkeypatch):
    seen = _reads_and_threads(monkeypatch)
    datasets.snapshot(AS_OF)
    assert len(seen) == 3 and all(thread == "MainThread" for _, thread in seen)


@pytest.mark.django_db
def test_all_course_members_inside_a_run_are_worked_out_once_and_cut_to_each_range(monkeypatch):
    from members.models import Order
    from tests.members.factories import BenefitFactory, SubscriptionFactory, TierFactory

    full, partial = BenefitFactory().tier, TierFactory()
    members = [UserFactory(date_joined=AS_OF - 400 * DAY) for _ in range(8)]
    for n, member in enumerate(members[:6]):
        tier = full if n % 3 else partial
        if n < 3:  # a Subscription row, live at as_of
            SubscriptionFactory(member=member, tier=tier, started_at=AS_OF - 40 * DAY,
                                current_period_start=AS_OF - 10 * DAY, current_period_end=AS_OF + 20 * DAY)
        else:  # an imported platform: the state inferred from tier orders (one lapsed long ago)
            paid = AS_OF - (200 if n == 5 else 10) * DAY
            Order.objects.create(member=member, kind=Order.Kind.SUBSCRIPTION, tier=tier, billing_period="month",
                                 list_price=49, amount_paid=49, status=Order.Status.PAID, paid_at=paid,
                                 created_at=paid)
    ids = sorted(m.pk for m in members)
    ranges = [datasets.ALL, datasets.MemberRange(every=2), datasets.MemberRange(ids[2], ids[5]),
              datasets.MemberRange(ids[1], None, 3)]
    direct = {rng: datasets.all_course_members(AS_OF, rng) for rng in ranges}
    assert direct[datasets.ALL] and direct[datasets.ALL] != set(ids)  # something to cut, something left out
    calls = []
    real = datasets.subscriptions
    monkeypatch.setattr(datasets, "subscriptions", lambda *a, **k: calls.append(a) or real(*a, **k))
    with datasets.read_once(AS_OF + DAY):
        for _ in range(2):
            assert {rng: datasets.all_course_members(AS_OF, rng) for rng in ranges} == direct
    assert len(calls) == 1
