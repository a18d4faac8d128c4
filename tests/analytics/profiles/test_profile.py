from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.profiles.selectors import member_profile
from tests.members.factories import UserFactory
from tests.members.history_factories import build_history


def _queries_for_profile(client, member) -> tuple[int, bytes]:
    url = reverse("profile:member", args=[member.pk])
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content


@pytest.mark.django_db
def test_profile_query_count_does_not_grow_with_history(staff_client, django_assert_num_queries):
    small = UserFactory(display_name="Small History")
    large = UserFactory(display_name="Large History")
    build_history(small, size=1)
    build_history(large, size=25)
    n_small, body_small = _queries_for_profile(staff_client, small)
    n_large, body_large = _queries_for_profile(staff_client, large)
    assert n_small == n_large
    assert b"Small History" in body_small and b"Large History" in body_large
    # Pinned so a new N+1 (a per-row lookup in the template) fails here.
    with django_assert_num_queries(n_large):
        staff_client.get(reverse("profile:member", args=[large.pk]))
    assert n_large <= 30


@pytest.mark.django_db
def test_profile_aggregates_are_computed_from_the_history():
    member = UserFactory()
    build_history(member, size=4)
    p = member_profile(member_id=member.pk)
    assert p.order_stats["paid"] == 4
    assert p.learning["enrolled"] == 4 and p.learning["completed"] == 2 and p.learning["completion_rate"] == 50
    assert p.community["posts"] == 4 and p.community["comments"] == 4 and p.community["following"] == 1
    assert p.recommendation_events == {"shown": 4, "clicked": 4}
    assert sum(n for _h, n, _pct in p.hours) == 12  # 3 events per history step, all inside the 90-day window
    assert p.propensity is not None and p.propensity.top_reasons
    assert [t["course__topic"] for t in p.topics][:1] == ["data"]
    assert p.reviews["n"] == 4


@pytest.mark.django_db
def test_profile_is_staff_only(client, alice, alice_client):
    # Signed in without analytics.view_member_profiles → 403, as the reports do (tests/analytics/test_permissions.py).
    url = reverse("profile:member", args=[alice.pk])
    assert alice_client.get(url).status_code == 403


@pytest.mark.django_db
def test_profile_404_for_unknown_member(staff_client):
    assert staff_client.get(reverse("profile:member", args=[999999])).status_code == 404
