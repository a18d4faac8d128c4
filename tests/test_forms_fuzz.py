"""Hypothesis against the HTML forms and filter pages (issue 13.10): random and hostile values in every field of
each form a learner or staff member submits — NUL, control characters, any Unicode, extreme dates, pathological
Markdown, 100 KB values, open redirects — must never be a server error. Bounded: a few dozen examples per route,
no example database, no shrinking deadline. The API gets the same treatment from schemathesis
(tests/api/test_schemathesis.py)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.community.factories import PostFactory
from tests.members.factories import CourseFactory, TierFactory, UserFactory

pytestmark = [pytest.mark.adversarial, pytest.mark.slow]

SPECIALS = [
    "\x00", "a\x00b", "9999-12-31", "0001-01-01", "2026-02-30", "//evil.example/", "https://evil.example/",
    "javascript:alert(1)", "/\r\nSet-Cookie: x=1", "http://[::1", "[" * 20000, "- " * 1000, "A" * 100_000,
    "<script>alert(1)</script>", "' OR 1=1 --", "%00", "\ufeff", "\u202e", "-1", "1e400", "NaN", "9" * 30, "",
]
# Form-encoded requests carry UTF-8, which cannot hold a lone surrogate; what arrives instead is U+FFFD.
hostile_text = st.one_of(
    st.sampled_from(SPECIALS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
)

# (method, url template, fields, who). {post}, {course}, {tier}, {member} are filled per test.
FORM_ROUTES = [
    ("post", "/community/posts/new/", ["title", "body", "course"], "alice"),
    ("post", "/community/posts/{post}/comment/", ["body", "parent"], "alice"),
    ("post", "/community/posts/{post}/edit/", ["title", "body"], "alice"),
    ("post", "/community/members/{member}/follow/", ["next"], "alice"),
    ("get", "/community/", ["scope", "course", "page"], "alice"),
    ("get", "/courses/", ["q", "topic", "level", "price_min", "price_max", "sort", "page"], "alice"),
    ("post", "/checkout/course/{course}/", ["coupon", "payment_token", "action"], "alice"),
    ("get", "/checkout/course/{course}/", ["coupon"], "alice"),
    ("post", "/checkout/membership/{tier}/", ["coupon", "period", "payment_token", "action", "use_trial"], "alice"),
    ("post", "/accounts/profile/", ["display_name", "preferred_language", "time_zone", "marketing_opt_in"], "alice"),
    ("post", "/accounts/signup/", ["email", "display_name", "password", "preferred_language"], None),
    ("post", "/accounts/login/", ["username", "password", "next"], None),
    ("get", "/staff/", ["start", "end", "tier", "segment"], "charlie"),
    ("get", "/staff/cohorts/", ["start", "end", "tier", "segment", "source", "course", "format", "table"], "charlie"),
    ("get", "/staff/churn/", ["tier", "segment", "page", "format"], "charlie"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "template", "fields", "who"), FORM_ROUTES,
                         ids=[f"{m} {t}" for m, t, _f, _w in FORM_ROUTES])
def test_forms_never_answer_a_server_error(client, alice, charlie, method, template, fields, who):
    post = PostFactory(author=alice)
    url = template.format(post=post.pk, course=CourseFactory(slug="sql").slug, tier=TierFactory(slug="plus").slug,
                          member=UserFactory().pk)
    if who is not None:
        client.force_login({"alice": alice, "charlie": charlie}[who])

    @settings(max_examples=25, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(data=st.fixed_dictionaries({}, optional=dict.fromkeys(fields, hostile_text)))
    def submit(data: dict[str, str]) -> None:
        response = getattr(client, method)(url, data)
        assert response.status_code < 500, (method, url, {k: v[:80] for k, v in data.items()}, response.status_code)

    submit()
