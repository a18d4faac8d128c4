from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import (
    Campaign,
    CampaignAssignment,
    EngagementScore,
    Event,
    JobRun,
    ModelVersion,
    PropensityScore,
    RecommendationRun,
    SegmentAssignment,
    SegmentRun,
)
from tests.analytics.factories import recommendation_set
from tests.api.conftest import assert_error
from tests.members.factories import (
    CourseFactory,
    SubscriptionFactory,
    TierFactory,
    UserFactory,
)

STAFF_LISTS = [
    "/api/v1/staff/members/",
    "/api/v1/staff/reports/overview/",
    "/api/v1/staff/reports/risk/",
    "/api/v1/staff/reports/cohorts/",
    "/api/v1/staff/campaigns/",
    "/api/v1/staff/model-versions/",
    "/api/v1/staff/job-runs/",
]


@pytest.mark.parametrize("url", [*STAFF_LISTS, "/api/v1/staff/campaigns/1/"])
@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 403), ("bob", 403)])
def test_staff_endpoints_refuse_non_staff(api_for, url, role, status):
    assert_error(api_for(role).get(url), status)


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("alice", 403), ("bob", 403)])
def test_job_trigger_refuses_non_staff(api_for, role, status):
    assert_error(api_for(role).post("/api/v1/staff/jobs/trigger/", {"job": "run-campaigns"}, format="json"), status)


@pytest.mark.parametrize("url", STAFF_LISTS)
def test_staff_can_read_every_staff_list(staff_api, url):
    assert staff_api.get(url).status_code == 200


# --------------------------------------------------------------------------------------------------------------
# Recommendations


def _recommend(member, courses, *, current=True, because=None):
    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=current)
    recommendation_set(run=run, member=member, items=[
        (course, 1.0 / rank, "similar_to_purchase" if because else "popular", because)
        for rank, course in enumerate(courses, start=1)])
    return run


def test_my_recommendations_come_from_the_current_run_only(alice_api, bob_api, alice, bob):
    old, new, other = CourseFactory(slug="old"), CourseFactory(slug="new"), CourseFactory(slug="new2")
    _recommend(alice, [old], current=False)
    _recommend(bob, [old], current=False)
    run = _recommend(alice, [new, other], because=old)
    body = alice_api.get("/api/v1/me/recommendations/").json()
    assert [r["course"]["slug"] for r in body] == ["new", "new2"]
    assert body[0]["reason_text"] == f"Similar to “{old.title}”, which you have"
    assert [(r["id"], r["score"], r["reason"], r["reason_course"]) for r in body] == [
        (run.sets.get().pk, 1.0, "similar_to_purchase", "old"), (run.sets.get().pk, 0.5, "similar_to_purchase", "old")]
    assert [r["rank"] for r in alice_api.get("/api/v1/me/recommendations/?limit=1").json()] == [1]
    fallback = bob_api.get("/api/v1/me/recommendations/").json()  # no current run for bob: popular courses, labelled
    assert {r["source"] for r in fallback} == {"popular"} and {r["reason"] for r in fallback} == {"popular"}


def test_api_recommendations_match_the_home_page_row(alice_api, alice_client, alice):
    """Same cards through both doors: owned courses left out, the popular fallback labelled the same way."""
    from analytics.recommendations.selectors import recommendation_cards
    from tests.members.factories import EnrollmentFactory

    owned, fresh = CourseFactory(slug="owned", title="Owned course"), CourseFactory(slug="fresh", title="Fresh course")
    EnrollmentFactory(member=alice, course=owned)
    _recommend(alice, [owned, fresh])
    body = alice_api.get("/api/v1/me/recommendations/").json()
    assert [r["course"]["slug"] for r in body] == ["fresh"]
    row = alice_client.get("/recommendations/row/").content.decode()
    assert "Fresh course" in row and "Owned course" not in row
    cards = recommendation_cards(member=alice, limit=10)
    assert [(c.course.slug, c.reason, c.source) for c in cards] == [(r["course"]["slug"], r["reason_text"], r["source"])
                                                                    for r in body]


def test_recommendations_need_login(anon_api, db):
    assert_error(anon_api.get("/api/v1/me/recommendations/"), 401)
    assert_error(anon_api.post("/api/v1/me/recommendations/feedback/", {}, format="json"), 401)


@pytest.mark.parametrize(("action", "kind"), [("impression", "recommendation_impression"),
                                              ("click", "recommendation_click"),
                                              ("dismiss", "recommendation_dismiss")])
def test_feedback_is_recorded_as_event(alice_api, alice, django_capture_on_commit_callbacks, action, kind):
    course = CourseFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post("/api/v1/me/recommendations/feedback/",
                                  {"action": action, "course": course.pk, "rank": 2}, format="json")
    assert response.status_code == 201 and response.json() == {"recorded": kind}
    event = Event.objects.get(kind=kind)
    assert (event.member_id, event.object_id, event.properties["rank"]) == (alice.pk, str(course.pk), 2)


def test_feedback_validation(alice_api):
    assert_error(alice_api.post("/api/v1/me/recommendations/feedback/", {"action": "like", "course": 1},
                                format="json"), 400, "invalid")
    assert_error(alice_api.post("/api/v1/me/recommendations/feedback/", {"action": "click", "course": 999999},
                                format="json"), 404)


# --------------------------------------------------------------------------------------------------------------
# Staff members


@pytest.fixture
def scored_members(db):
    now = timezone.now()
    serving = ModelVersion.objects.create(kind="repurchase", as_of=now, horizon_days=90, algorithm="hgb",
                                          is_serving=True)
    retired = ModelVersion.objects.create(kind="repurchase", as_of=now, horizon_days=90, algorithm="lr")
    seg_run = SegmentRun.objects.create(as_of=now, k=2)
    plus = TierFactory(slug="plus")
    members = []
    for n, (prob, label, score) in enumerate([(0.9, "loyal", 80.0), (0.2, "at_risk", 20.0), (0.5, "loyal", 50.0)]):
        member = UserFactory(email=f"m{n}@example.com")
        # An older snapshot first, so the selector must pick the latest.
        EngagementScore.objects.create(member=member, as_of=now - timedelta(days=1), score=1.0)
        EngagementScore.objects.create(member=member, as_of=now, score=score)
        SegmentAssignment.objects.create(run=seg_run, member=member, as_of=now, cluster=n, label=label)
        PropensityScore.objects.create(member=member, model_version=serving, as_of=now, probability=prob,
                                       top_reasons=[{"text": f"reason {n}"}])
        PropensityScore.objects.create(member=member, model_version=retired, as_of=now + timedelta(hours=1),
                                       probability=0.01)
        members.append(member)
    SubscriptionFactory(member=members[0], tier=plus)
    return members


def test_staff_members_with_latest_scores(staff_api, scored_members, django_assert_num_queries):
    for _ in range(5):
        UserFactory()  # unscored members still list, with nulls
    with django_assert_num_queries(3):  # token, count, page (all latest values as subqueries)
        body = staff_api.get("/api/v1/staff/members/").json()
    assert body["count"] == 8  # staff (charlie) excluded
    first = next(m for m in body["results"] if m["email"] == "m0@example.com")
    assert (first["engagement_score"], first["segment"], first["probability"], first["tier"]) == (
        80.0, "loyal", 0.9, "plus")
    assert first["churn_risk"] == pytest.approx(0.1)
    assert first["top_reasons"] == [{"text": "reason 0"}]


@pytest.mark.parametrize(
    ("query", "emails"),
    [
        ("segment=loyal", ["m0@example.com", "m2@example.com"]),
        ("min_probability=0.4", ["m0@example.com", "m2@example.com"]),
        ("max_probability=0.3", ["m1@example.com"]),
        ("tier=plus", ["m0@example.com"]),
        ("segment=loyal&ordering=probability", ["m2@example.com", "m0@example.com"]),
        ("min_probability=0&ordering=-engagement_score", ["m0@example.com", "m2@example.com", "m1@example.com"]),
    ],
)
def test_staff_members_filters(staff_api, scored_members, query, emails):
    body = staff_api.get(f"/api/v1/staff/members/?{query}").json()
    assert [m["email"] for m in body["results"]] == emails


def test_staff_members_bad_probability_is_400(staff_api, db):
    error = assert_error(staff_api.get("/api/v1/staff/members/?min_probability=high"), 400, "invalid")
    assert "min_probability" in error["fields"]


# --------------------------------------------------------------------------------------------------------------
# Reports, campaigns, models, jobs


def test_overview_report_figures(staff_api, db):
    TierFactory(slug="plus")
    body = staff_api.get("/api/v1/staff/reports/overview/?days=30").json()
    assert body["figures"] and {"key", "value", "trend"} <= set(body["figures"][0])
    assert_error(staff_api.get("/api/v1/staff/reports/overview/?days=0"), 400, "invalid")


def test_campaigns_list_and_results(staff_api, django_assert_num_queries):
    campaign = Campaign.objects.create(name="Win back", status="active", percent_off=20)
    for n in range(4):
        member = UserFactory()
        CampaignAssignment.objects.create(campaign=campaign, member=member,
                                          group="treatment" if n < 3 else "control",
                                          converted_at=timezone.now() if n == 0 else None)
    Campaign.objects.create(name="Other")
    with django_assert_num_queries(3):
        body = staff_api.get("/api/v1/staff/campaigns/").json()
    assert {c["name"]: c["assigned"] for c in body["results"]} == {"Win back": 4, "Other": 0}
    detail = staff_api.get(f"/api/v1/staff/campaigns/{campaign.pk}/").json()
    assert detail["results"]["treatment"]["n"] == 3 and detail["results"]["control"]["n"] == 1
    assert detail["results"]["treatment"]["conversions"] == 1
    assert_error(staff_api.get("/api/v1/staff/campaigns/999999/"), 404)


def test_model_versions_and_job_runs(staff_api, django_assert_num_queries):
    now = timezone.now()
    for kind in ("repurchase", "repurchase", "recommendations"):
        ModelVersion.objects.create(kind=kind, as_of=now, horizon_days=90, algorithm="hgb")
    JobRun.objects.create(job="nightly-analytics", status="succeeded", finished_at=now, rows=10)
    JobRun.objects.create(job="run-campaigns", status="failed", error="boom")
    with django_assert_num_queries(3):
        assert staff_api.get("/api/v1/staff/model-versions/").json()["count"] == 3
    assert staff_api.get("/api/v1/staff/model-versions/?kind=repurchase").json()["count"] == 2
    runs = staff_api.get("/api/v1/staff/job-runs/?status=failed").json()["results"]
    assert [(r["job"], r["error"]) for r in runs] == [("run-campaigns", "boom")]


def test_trigger_job_sends_the_scheduled_task(staff_api, monkeypatch):
    from config.celery import app

    sent = []

    class Result:
        id = "task-1"

    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)) or Result())
    response = staff_api.post("/api/v1/staff/jobs/trigger/", {"job": "nightly-analytics"}, format="json")
    assert response.status_code == 202
    assert response.json() == {"job": "nightly-analytics", "task": "analytics.scoring.tasks.run_nightly_pipeline",
                               "task_id": "task-1"}
    assert sent == [("analytics.scoring.tasks.run_nightly_pipeline", {})]


def test_trigger_unknown_job_is_400(staff_api):
    error = assert_error(staff_api.post("/api/v1/staff/jobs/trigger/", {"job": "os.system"}, format="json"), 400)
    assert "job" in error["fields"]


def test_risk_distribution_and_cohorts(staff_api, scored_members):
    risk = staff_api.get("/api/v1/staff/reports/risk/").json()
    assert risk["scored"] == 3 and sum(b["count"] for b in risk["bins"]) == 3
    cohorts = staff_api.get("/api/v1/staff/reports/cohorts/?months=3").json()
    assert cohorts["tables"] and all(len(t["offsets"]) == 3 for t in cohorts["tables"])
    assert_error(staff_api.get("/api/v1/staff/reports/cohorts/?months=99"), 400, "invalid")


def test_staff_member_filters_use_the_latest_values_only(staff_api, scored_members):
    m0 = scored_members[0]  # loyal, probability 0.9 at `now`
    later = timezone.now() + timedelta(days=1)
    run = SegmentRun.objects.create(as_of=later, k=2)
    SegmentAssignment.objects.create(run=run, member=m0, as_of=later, cluster=1, label="at_risk")
    serving = ModelVersion.objects.get(is_serving=True)
    PropensityScore.objects.create(member=m0, model_version=serving, as_of=later, probability=0.1)
    loyal = staff_api.get("/api/v1/staff/members/?segment=loyal").json()["results"]
    assert [m["email"] for m in loyal] == ["m2@example.com"]
    high = staff_api.get("/api/v1/staff/members/?min_probability=0.8").json()
    assert high["count"] == 0
    low = staff_api.get("/api/v1/staff/members/?segment=at_risk&max_probability=0.15").json()["results"]
    assert [m["email"] for m in low] == ["m0@example.com"]
