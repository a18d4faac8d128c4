"""The nightly recommendation stages do their per-run work once and per-chunk work only for the chunk's members, with
the same results as the straightforward code they replaced (kept here as the oracle)."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.ml import datasets, evaluation, recommendations
from analytics.scoring import services
from members.models import Enrollment, Order
from tests.analytics.factories import make_platform, run_rows


@pytest.fixture
def platform(db):
    return make_platform(members=90, days=260, seed=13)


def _with_refunds(platform) -> None:
    """Orders refunded before and after the cutoff, a refunded pair still paid by a second order, a gift enrolment
    whose course order was refunded (kept: only purchase enrolments end with their refund), completions before
    and after the cutoff."""
    as_of = platform.end - timedelta(days=30)
    orders = list(Order.objects.filter(kind=Order.Kind.COURSE, paid_at__lt=as_of - timedelta(days=20))
                  .order_by("id")[:12])
    assert len(orders) == 12
    for order in orders[:4]:  # refunded before as_of: their purchase enrolments are gone at as_of
        Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDED, refunded_at=as_of - timedelta(days=5))
    for order in orders[4:6]:  # refunded after as_of: still paid then
        Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDED, refunded_at=as_of + timedelta(days=5))
    refunded = orders[0]  # bought again and still paid
    Order.objects.create(member_id=refunded.member_id, kind=Order.Kind.COURSE, course_id=refunded.course_id,
                         list_price=refunded.list_price, amount_paid=refunded.amount_paid, status=Order.Status.PAID,
                         paid_at=as_of - timedelta(days=2), created_at=as_of - timedelta(days=2))
    Enrollment.objects.filter(member_id=orders[1].member_id, course_id=orders[1].course_id).update(
        source=Enrollment.Source.GIFT)
    done = list(Enrollment.objects.order_by("id").values_list("id", flat=True)[:20])
    Enrollment.objects.filter(id__in=done[:10]).update(completed_at=as_of - timedelta(days=1))
    Enrollment.objects.filter(id__in=done[10:]).update(completed_at=as_of + timedelta(days=1))


def _old_interactions(as_of, rng=datasets.ALL) -> pd.DataFrame:
    """course_interactions before this change: orders() and enrollments() (correlated refund subqueries)."""
    ords = datasets.orders(as_of, rng)
    ords = ords[ords["kind"] == Order.Kind.COURSE][["member_id", "course_id", "paid_at"]].rename(
        columns={"paid_at": "at"}).assign(completed=False)
    enr = datasets.enrollments(as_of, rng)
    enr = enr.assign(completed=enr["completed_at"].notna())[["member_id", "course_id", "enrolled_at", "completed"]]
    both = pd.concat([ords, enr.rename(columns={"enrolled_at": "at"})], ignore_index=True)
    both = both.dropna(subset=["course_id"]).astype({"member_id": int, "course_id": int})
    return both.groupby(["member_id", "course_id"], as_index=False).agg(at=("at", "max"), completed=("completed", "max"))


def _old_events(as_of, rng=datasets.ALL) -> pd.DataFrame:
    ords = datasets.orders(as_of, rng)
    ords = ords.loc[(ords["kind"] == Order.Kind.COURSE) & ords["course_id"].notna(), ["member_id", "course_id", "paid_at"]]
    enr = datasets.enrollments(as_of, rng)[["member_id", "course_id", "enrolled_at"]]
    both = pd.concat([ords.rename(columns={"paid_at": "at"}), enr.rename(columns={"enrolled_at": "at"})],
                     ignore_index=True).astype({"member_id": int, "course_id": int})
    return both.drop_duplicates(["member_id", "course_id", "at"]).reset_index(drop=True)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), kind="mergesort").reset_index(drop=True)


def test_course_history_reads_what_orders_and_enrollments_read(platform):
    _with_refunds(platform)
    as_of = platform.end - timedelta(days=30)
    lo = platform.member_ids[20]
    later = datasets.course_record(platform.end)  # read after both cutoffs below: they are filters of it
    for rng in (datasets.ALL, datasets.MemberRange(lo, lo + 40)):
        for cutoff in (as_of - timedelta(days=30), as_of):
            record = datasets.course_record(cutoff, rng)
            orders = record.orders
            paid = orders[(orders["paid_at"] < pd.Timestamp(cutoff)) & ~(orders["refunded_at"] < pd.Timestamp(cutoff))]
            pd.testing.assert_frame_equal(_sorted(datasets._record_enrollments(record, cutoff, paid)),
                                          _sorted(datasets.enrollments(cutoff, rng)))
            events, interactions = datasets.course_events(cutoff, rng), datasets.course_interactions(cutoff, rng)
            pd.testing.assert_frame_equal(_sorted(events), _sorted(_old_events(cutoff, rng)))
            pd.testing.assert_frame_equal(interactions, _old_interactions(cutoff, rng))
            if rng == datasets.ALL:
                history = datasets.course_history(cutoff, record=later)
                pd.testing.assert_frame_equal(_sorted(datasets.events_from(history)), _sorted(events))
                pd.testing.assert_frame_equal(datasets.interactions_from(history), interactions)
    with pytest.raises(ValueError):
        datasets.course_history(platform.end + timedelta(days=1), record=later)
    # The refund rule matters here: a purchase enrolment refunded before as_of with no order still paid is gone.
    assert len(datasets.enrollments(as_of)) < Enrollment.objects.filter(enrolled_at__lt=as_of).count()


def test_a_course_record_inside_read_once_is_the_one_read_from_the_database(platform):
    """Inside the nightly run the course record filters the orders and enrolments the features read once; it must
    hold what its own queries hold, for every cutoff and member range, with the refund rule applied alike."""
    _with_refunds(platform)
    lo = platform.member_ids[20]
    cutoffs = (platform.end - timedelta(days=60), platform.end - timedelta(days=30), platform.end)
    refunds = 0
    for rng in (datasets.ALL, datasets.MemberRange(lo, lo + 40)):
        for cutoff in cutoffs:
            alone = datasets.course_record(cutoff, rng)
            with datasets.read_once(platform.end):
                datasets.orders(platform.end)  # the features' read comes first in a night
                shared = datasets.course_record(cutoff, rng)
                for name in ("orders", "refunds", "enrollments"):
                    pd.testing.assert_frame_equal(_sorted(getattr(shared, name)), _sorted(getattr(alone, name)),
                                                  check_dtype=False)
                pd.testing.assert_frame_equal(_sorted(datasets.course_history(cutoff, rng, record=shared)),
                                              _sorted(datasets.course_history(cutoff, rng, record=alone)))
            assert len(alone.orders) and len(alone.enrollments)
            refunds += len(alone.refunds)
    assert refunds  # the refund rule was exercised


def test_vectorised_ranking_metrics_equal_the_per_member_loop(platform):
    cutoff = platform.end - timedelta(days=60)
    sig, truth = evaluation._split(cutoff, platform.end - timedelta(days=30))
    assert len(truth) > 10
    truth = {**truth, 10**9: {platform.course_ids[0]}}  # a member without a ranking: all misses
    k = len(sig.course_ids) - 2  # longer than many members' candidate lists (owned items are blocked)
    short = 0
    for weights, popularity in [*((w, "decayed") for w in recommendations.BLEND_GRID),
                                *recommendations.PEER_WEIGHTS.values()]:
        top = recommendations.ranked(sig, weights, k, popularity)
        short += int((~top[1]).any(axis=1).sum())
        new = recommendations.ranked_metrics(sig, top, truth, k)
        old = recommendations.ranking_metrics(recommendations.top_k(sig, weights, k, popularity), truth, k)
        for name in ("ndcg", "hit", "recall"):
            assert np.array_equal(new[name], old[name]), name
    assert short > 0  # some lists were shorter than k


def test_per_run_work_is_done_once_and_a_chunk_reads_only_its_members(platform, monkeypatch):
    as_of = platform.end
    reads, chunk_members = [], []
    real_history, real_build = datasets.course_record, recommendations.build_signals
    monkeypatch.setattr(datasets, "course_record", lambda when, rng=datasets.ALL: reads.append(when)
                        or real_history(when, rng))

    def build(courses, events, owned, when, members, items=None):
        chunk_members.append((set(events["member_id"]) | set(owned["member_id"]), set(members)))
        return real_build(courses, events, owned, when, members, items)

    monkeypatch.setattr(recommendations, "build_signals", build)
    chunked = services.recommendations_start(as_of=as_of, k=5, chunks=3)
    assert reads == [as_of]  # one read at as_of: the validation split is a filter of it
    reads.clear()
    chunk_members.clear()
    ranges = services.member_chunks(size=40, processes=1)
    assert len(ranges) == 3
    for id_from, id_to in ranges:
        services.recommendations_chunk(run=chunked, id_from=id_from, id_to=id_to)
    assert reads == []  # the chunks serve from the read the run started with
    for (read, scored), (id_from, id_to) in zip(chunk_members, ranges):
        assert scored and all(id_from <= m < id_to for m in read | scored)

    assert not services._run_model  # released once the run is complete
    whole = services.recommendations_start(as_of=as_of, k=5, chunks=1)
    services._run_model.clear()  # as on a worker that did not start the run: it reads the history itself
    services.recommendations_chunk(run=whole)
    assert reads == [as_of, as_of]
    assert whole.params["weights"] == chunked.params["weights"] and whole.metrics == chunked.metrics

    def rows(run):
        return run_rows(run)

    assert rows(chunked) == rows(whole) and len(rows(whole)) > 0
    assert {r[4] for r in rows(whole)} >= {"popular"}
