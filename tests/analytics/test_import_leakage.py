"""No leakage by construction: a platform's history imported whole and scored as of T gives the same scores,
segments and recommendations as a fresh database holding only the rows known before T (an order refunded after T
is a paid order there, an order or event after T is absent)."""
from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from analytics.ingest.platform import import_platform_data
from analytics.ml import datasets
from analytics.models import PropensityScore, SegmentAssignment
from analytics.scoring import services
from members.models import Enrollment, Order, User

START = datetime(2025, 1, 1, tzinfo=UTC)
T = datetime(2025, 8, 1, tzinfo=UTC)


def _history(seed: int = 3) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    members, orders, events = [], [], []
    products = [{"product_id": f"p{i}", "title": f"Course {i} {'python' if i % 2 else 'design'}",
                 "price": "10.00", "tags": "python" if i % 2 else "design"} for i in range(8)]
    for m in range(70):
        joined = START + timedelta(days=int(rng.integers(0, 150)))
        members.append({"member_id": f"m{m}", "joined_at": joined.isoformat()})
        rate = rng.uniform(0.005, 0.06)
        day = joined
        n = 0
        while day < START + timedelta(days=300):
            day += timedelta(days=float(rng.exponential(1 / rate)))
            if day >= START + timedelta(days=300):
                break
            status, refunded = "paid", ""
            if rng.random() < 0.1:
                status = "refunded"
                refunded = (day + timedelta(days=int(rng.integers(1, 40)))).isoformat()
            orders.append({"order_id": f"o{m}-{n}", "member_id": f"m{m}", "product_id": f"p{int(rng.integers(0, 8))}",
                           "amount": "10.00", "ordered_at": day.isoformat(), "status": status,
                           "refunded_at": refunded})
            for e in range(int(rng.integers(0, 4))):
                kind = ["lesson_viewed", "video_watched", "course_completed", "course_failed"][e % 4]
                events.append({"event_id": f"e{m}-{n}-{e}", "member_id": f"m{m}", "kind": kind,
                               "occurred_at": (day + timedelta(days=e + 1)).isoformat(),
                               "quantity": str(int(rng.integers(30, 600))), "object_type": "course",
                               "object_id": f"p{e}", "properties": json.dumps({"unit": "seconds"})})
            n += 1
    return members, products, orders, events


def _known_before(rows: list[dict], when: datetime, column: str) -> list[dict]:
    return [r for r in rows if datetime.fromisoformat(r[column]) < when]


def _as_known_at(orders: list[dict], when: datetime) -> list[dict]:
    out = []
    for row in _known_before(orders, when, "ordered_at"):
        if row["refunded_at"] and datetime.fromisoformat(row["refunded_at"]) >= when:
            row = {**row, "status": "paid", "refunded_at": ""}  # the refund had not happened yet
        out.append(row)
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _import(tmp: Path, members: list[dict], products: list[dict], orders: list[dict], events: list[dict]) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    report = import_platform_data(members=_write(tmp / "members.csv", members),
                                  products=_write(tmp / "products.csv", products),
                                  orders=_write(tmp / "orders.csv", orders), events=_write(tmp / "events.csv", events))
    assert report.ok, report


def _outputs() -> dict[str, dict]:
    external = dict(User.objects.values_list("pk", "external_id"))
    version = services.repurchase_train(as_of=T, horizon_days=30).version
    services.propensity_score(as_of=T, version=version)
    scores = {external[m]: round(p, 9) for m, p in
              PropensityScore.objects.filter(as_of=T).values_list("member_id", "probability")}
    services.segments_compute(as_of=T)
    segments = {external[m]: label for m, label in
                SegmentAssignment.objects.filter(as_of=T).values_list("member_id", "label")}
    recs = services.recommendations_for(T, 5)
    courses = dict(datasets.courses(T)[["course_id", "external_id"]].itertuples(index=False))
    recommended = {(external[m], r, courses[c]) for m, r, c in recs[["member_id", "rank", "course_id"]].itertuples(
        index=False)}
    return {"scores": scores, "segments": segments, "recommendations": {"all": sorted(recommended)},
            "algorithm": {"served": version.algorithm}}


@pytest.mark.django_db(transaction=True)
def test_scores_segments_and_recommendations_equal_those_of_a_database_with_only_the_rows_known_before_t(tmp_path):
    members, products, orders, events = _history()
    assert any(r["refunded_at"] and datetime.fromisoformat(r["refunded_at"]) >= T > datetime.fromisoformat(
        r["ordered_at"]) for r in orders), "the history needs an order refunded after T"
    # Both databases start their ids from 1, as two fresh platforms would (earlier tests advanced the sequences).
    call_command("flush", interactive=False, verbosity=0)
    _import(tmp_path / "full", members, products, orders, events)
    assert Enrollment.objects.filter(member__external_id__isnull=False).exists()
    assert Order.objects.filter(status=Order.Status.REFUNDED, refunded_at__gte=T).exists()
    full = _outputs()

    call_command("flush", interactive=False, verbosity=0)  # a fresh database: ids start again from 1
    _import(tmp_path / "known", _known_before(members, T, "joined_at"),
            products, _as_known_at(orders, T), _known_before(events, T, "occurred_at"))
    known = _outputs()

    assert full["scores"] and full["segments"] and full["recommendations"]["all"]
    assert full == known


@pytest.mark.django_db
def test_an_imported_enrolment_exists_from_its_order_until_its_refund(tmp_path):
    _import(tmp_path, [{"member_id": "m1", "joined_at": START.isoformat()}],
            [{"product_id": "p1", "title": "Course 1", "price": "10.00"}],
            [{"order_id": "o1", "member_id": "m1", "product_id": "p1", "amount": "10.00",
              "ordered_at": (START + timedelta(days=10)).isoformat(), "status": "refunded",
              "refunded_at": (START + timedelta(days=20)).isoformat()}],
            [{"member_id": "m1", "kind": "course_withdrawn", "occurred_at": (START + timedelta(days=19)).isoformat(),
              "quantity": ""}])
    assert Order.objects.get(external_id="o1").refunded_at == START + timedelta(days=20)
    assert len(datasets.enrollments(START + timedelta(days=5))) == 0
    assert len(datasets.enrollments(START + timedelta(days=15))) == 1  # the refund was not known yet
    assert len(datasets.enrollments(START + timedelta(days=25))) == 0
    outcomes = datasets.course_outcomes(START + timedelta(days=25))
    assert outcomes.set_index("member_id")["outcomes_withdrawn"].tolist() == [1]
    member = int(outcomes["member_id"].iloc[0])
    inside = datasets.course_outcomes(START + timedelta(days=25), datasets.MemberRange(member, member + 1))
    outside = datasets.course_outcomes(START + timedelta(days=25), datasets.MemberRange(member + 1, None))
    assert inside.set_index("member_id")["outcomes_withdrawn"].to_dict() == {member: 1} and outside.empty
