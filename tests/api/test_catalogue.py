from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api.conftest import assert_error
from tests.members.factories import (
    BenefitFactory,
    CourseFactory,
    LessonFactory,
    TierFactory,
)

ROLES = ["anonymous", "alice", "bob", "charlie"]


@pytest.fixture
def catalogue(db):
    sql = CourseFactory(title="SQL for analysts", slug="sql", topic="data", level="beginner", price=Decimal("99.00"))
    ml = CourseFactory(title="Machine learning", slug="ml", topic="data", level="advanced", price=Decimal("399.00"))
    design = CourseFactory(title="Design basics", slug="design", topic="design", level="beginner",
                           price=Decimal("199.00"), instructor="Mei Lin")
    CourseFactory(title="Draft", slug="draft", is_published=False)
    CourseFactory(title="Generic", slug="generic", is_generic=True)
    for position in (1, 2, 3):
        LessonFactory(course=sql, position=position)
    return {"sql": sql, "ml": ml, "design": design}


@pytest.mark.parametrize("role", ROLES)
def test_everyone_can_list_published_courses_only(api_for, catalogue, role):
    response = api_for(role).get("/api/v1/courses/")
    assert response.status_code == 200
    slugs = [course["slug"] for course in response.json()["results"]]
    assert slugs == ["design", "ml", "sql"]
    sql = next(c for c in response.json()["results"] if c["slug"] == "sql")
    assert sql["lesson_count"] == 3 and sql["price"] == "99.00"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("topic=data", ["ml", "sql"]),
        ("level=beginner", ["design", "sql"]),
        ("min_price=150&max_price=250", ["design"]),
        ("search=mei", ["design"]),
        ("search=learning", ["ml"]),
        ("ordering=-price", ["ml", "design", "sql"]),
        ("ordering=price&topic=data", ["sql", "ml"]),
    ],
)
def test_course_list_filters_searches_and_orders(anon_api, catalogue, query, expected):
    response = anon_api.get(f"/api/v1/courses/?{query}")
    assert response.status_code == 200
    assert [c["slug"] for c in response.json()["results"]] == expected


def test_course_list_paginates(anon_api, db):
    for n in range(25):
        CourseFactory(slug=f"c-{n:02d}", title=f"C {n:02d}")
    first = anon_api.get("/api/v1/courses/").json()
    assert first["count"] == 25 and len(first["results"]) == 20 and first["next"]
    second = anon_api.get("/api/v1/courses/?page=2").json()
    assert len(second["results"]) == 5 and second["next"] is None


def test_course_list_rejects_bad_level_with_error_body(anon_api, catalogue):
    error = assert_error(anon_api.get("/api/v1/courses/?level=expert"), 400, "invalid")
    assert "level" in error["fields"]


def test_course_list_query_count_does_not_grow_with_courses(anon_api, django_assert_num_queries, db):
    for _n in range(12):
        course = CourseFactory()
        LessonFactory(course=course, position=1)
    with django_assert_num_queries(2):  # count + page (lesson counts annotated)
        assert anon_api.get("/api/v1/courses/").status_code == 200
    with django_assert_num_queries(0):  # the same list again, from the page cache (version in LocMem here)
        assert anon_api.get("/api/v1/courses/").json()["count"] == 12


def test_the_cached_anonymous_course_list_follows_writes_query_strings_and_languages(anon_api, db):
    course = CourseFactory(title="Before", topic="data")
    CourseFactory(title="Other", topic="design")
    assert [c["title"] for c in anon_api.get("/api/v1/courses/").json()["results"]] == ["Before", "Other"]
    assert [c["title"] for c in anon_api.get("/api/v1/courses/?topic=design").json()["results"]] == ["Other"]
    course.title = "After"
    course.save()
    assert [c["title"] for c in anon_api.get("/api/v1/courses/").json()["results"]] == ["After", "Other"]
    course.title_zh_hans = "之后"
    course.save()
    chinese = anon_api.get("/api/v1/courses/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()["results"]
    assert {c["title"] for c in chinese} == {"之后", "Other"}
    assert {c["title"] for c in anon_api.get("/api/v1/courses/").json()["results"]} == {"After", "Other"}


@pytest.mark.parametrize("role", ROLES)
def test_course_detail_has_lessons_in_order(api_for, catalogue, role):
    response = api_for(role).get("/api/v1/courses/sql/")
    assert response.status_code == 200
    assert [lesson["position"] for lesson in response.json()["lessons"]] == [1, 2, 3]
    assert "body" not in response.json()["lessons"][0]


@pytest.mark.parametrize("slug", ["draft", "generic", "missing"])
def test_unpublished_generic_or_missing_course_is_404(anon_api, catalogue, slug):
    assert_error(anon_api.get(f"/api/v1/courses/{slug}/"), 404, "not_found")


@pytest.mark.parametrize("role", ROLES)
def test_tiers_with_benefits(api_for, db, role, django_assert_num_queries):
    plus = TierFactory(slug="plus", order=1)
    BenefitFactory(tier=plus, kind="all_courses")
    BenefitFactory(tier=plus, kind="course_discount", value=Decimal(20))
    pro = TierFactory(slug="pro", order=2)
    BenefitFactory(tier=pro, kind="community")
    TierFactory(slug="hidden", is_public=False)
    client = api_for(role)
    auth_queries = 0 if role == "anonymous" else 1  # the token lookup
    with django_assert_num_queries(2 + auth_queries):  # tiers + prefetched benefits
        response = client.get("/api/v1/tiers/")
    assert response.status_code == 200
    body = response.json()
    assert [t["slug"] for t in body] == ["plus", "pro"]
    assert {b["kind"] for b in body[0]["benefits"]} == {"all_courses", "course_discount"}
