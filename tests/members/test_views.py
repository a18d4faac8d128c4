"""Learner pages: full page and htmx fragment, who may see what, and pinned query counts on list pages."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from analytics.models import Event, RecommendationRun
from members.accounts import emails
from members.models import (
    Benefit,
    Coupon,
    LessonProgress,
    RetentionOffer,
    Review,
    Subscription,
    User,
)
from tests.analytics.factories import recommendation_set
from tests.members.factories import (
    BenefitFactory,
    CouponFactory,
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    OrderFactory,
    SubscriptionFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


# --------------------------------------------------------------------------------------------------------------
# Accounts


def test_signup_creates_member_logs_in_and_records_event(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("signup"), {
            "email": "New@Example.com", "display_name": "Nova", "password": "a-good-passphrase-42",
            "preferred_language": "zh-hans",
        })
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.preferred_language == "zh-hans"
    assert Event.objects.filter(member=user, kind="signed_up").exists()
    assert client.get(reverse("members:home")).context["user"] == user


def test_signup_shows_errors_next_to_fields(client, alice):
    response = client.post(reverse("signup"), {"email": "alice@example.com", "display_name": "", "password": "123",
                                               "preferred_language": "en"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "email" in form.errors and "display_name" in form.errors and "password" in form.errors
    assert b'aria-invalid="true"' in response.content


def test_login_and_logout(client, alice):
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": "pw-for-tests-123"})
    assert response.status_code == 302
    assert client.post(reverse("logout")).status_code == 302


def test_password_reset_sends_text_and_html_email(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "/accounts/password/reset/" in message.body
    assert message.alternatives and message.alternatives[0][1] == "text/html"


def test_profile_requires_login_and_saves(client, alice):
    assert client.get(reverse("profile")).status_code == 302
    client.force_login(alice)
    assert client.get(reverse("profile")).status_code == 200
    response = client.post(reverse("profile"), {"display_name": "Alice W", "preferred_language": "zh-hans",
                                                "time_zone": "Asia/Shanghai"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.display_name, alice.preferred_language, alice.time_zone, alice.marketing_opt_in) == (
        "Alice W", "zh-hans", "Asia/Shanghai", False)


def test_unsubscribe_link_is_signed_and_needs_post(client, alice, django_capture_on_commit_callbacks):
    url = reverse("unsubscribe", kwargs={"token": emails.unsubscribe_token(member=alice)})
    assert client.get(url).status_code == 200
    alice.refresh_from_db()
    assert alice.marketing_opt_in is True  # a GET (link scanner) changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 200
    alice.refresh_from_db()
    assert alice.marketing_opt_in is False
    assert Event.objects.filter(member=alice, kind="marketing_unsubscribed").count() == 1
    tampered = url.replace(url.split("/")[-2], url.split("/")[-2][:-2] + "xx")
    assert client.post(tampered).status_code == 400


# --------------------------------------------------------------------------------------------------------------
# Home and recommendations


def test_anonymous_home_shows_catalogue_and_tiers(client):
    CourseFactory(title="Public Course")
    tier = TierFactory(name="Gold")
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    response = client.get(reverse("members:home"))
    assert response.status_code == 200
    assert b"Public Course" in response.content and b"Gold" in response.content
    assert b"All-course access" in response.content


def test_member_home_shows_continue_membership_and_coupons(client, alice):
    course = CourseFactory(title="Deep Learning")
    first = LessonFactory(course=course, position=1, title="Intro")
    LessonFactory(course=course, position=2, title="Second step")
    EnrollmentFactory(member=alice, course=course, last_activity_at=timezone.now())
    LessonProgress.objects.create(member=alice, lesson=first, completed_at=timezone.now())
    SubscriptionFactory(member=alice, tier=TierFactory(name="Plus"))
    CouponFactory(code="ALICE10", assigned_member=alice)
    client.force_login(alice)
    response = client.get(reverse("members:home"))
    body = response.content.decode()
    assert "Second step" in body  # the first lesson not completed
    assert "Plus" in body and "ALICE10" in body
    assert 'hx-get="/recommendations/row/"' in body and 'hx-trigger="load"' in body


def test_recommendation_row_uses_current_run_and_records_impressions(client, alice, django_capture_on_commit_callbacks):
    finished, rec = CourseFactory(title="Finished one"), CourseFactory(title="Next one")
    old = RecommendationRun.objects.create(as_of=timezone.now(), is_current=False)
    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    recommendation_set(run=old, member=alice, items=[(finished, 1, "popular")])
    recommendation_set(run=run, member=alice, items=[(rec, 0.9, "because_you_finished", finished)])
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(reverse("recs:row"), **HX)
    body = response.content.decode()
    assert "<html" not in body
    assert "Next one" in body and "Because you finished" in body and "Finished one" in body
    assert f"/recommendations/click/{rec.pk}/?rank=1" in body
    impression = Event.objects.get(member=alice, kind="recommendation_impression", object_id=str(rec.pk))
    assert impression.properties == {"rank": 1, "source": "model", "run_id": run.pk}


def test_recommendation_row_records_the_same_cards_once_per_window_and_new_cards_at_once(
    client, alice, django_capture_on_commit_callbacks
):
    """An impression is counted once per member, card set and RECOMMENDATION_IMPRESSION_WINDOW_SECONDS: reloading
    the row, in this browser or another, records nothing more; a new run's cards are recorded at once."""
    first, second = CourseFactory(title="First pick"), CourseFactory(title="Second pick")
    run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    recommendation_set(run=run, member=alice, items=[(first, 0.9, "popular")])
    client.force_login(alice)
    other_browser = type(client)()
    other_browser.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        for browser in (client, client, other_browser, client):
            assert "First pick" in browser.get(reverse("recs:row"), **HX).content.decode()
    shown = Event.objects.filter(member=alice, kind="recommendation_impression")
    assert list(shown.values_list("object_id", flat=True)) == [str(first.pk)]
    RecommendationRun.objects.filter(pk=run.pk).update(is_current=False)
    new_run = RecommendationRun.objects.create(as_of=timezone.now(), is_current=True)
    recommendation_set(run=new_run, member=alice, items=[(second, 0.8, "popular")])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            assert "Second pick" in client.get(reverse("recs:row"), **HX).content.decode()
    assert sorted(shown.values_list("object_id", "properties__run_id")) == sorted(
        [(str(first.pk), run.pk), (str(second.pk), new_run.pk)])


def test_recommendation_row_falls_back_to_popular_unowned(client, alice):
    owned, popular = CourseFactory(title="Owned"), CourseFactory(title="Crowd favourite")
    EnrollmentFactory(member=alice, course=owned)
    for _ in range(3):
        EnrollmentFactory(course=popular)
    client.force_login(alice)
    response = client.get(reverse("recs:row"))
    body = response.content.decode()
    assert "<html" in body  # full page without htmx
    assert "Crowd favourite" in body and "Popular on the platform" in body and "for you" not in body.lower()
    assert ">Owned<" not in body


def test_recommendation_click_records_and_redirects(client, alice, django_capture_on_commit_callbacks):
    course = CourseFactory()
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(reverse("recs:click", args=[course.pk]) + "?rank=3")
    assert response.status_code == 302 and response["Location"] == course.get_absolute_url()
    event = Event.objects.get(member=alice, kind="recommendation_click")
    assert event.properties["rank"] == 3


# --------------------------------------------------------------------------------------------------------------
# Catalogue


def test_catalogue_search_filter_sort_and_fragment(client):
    CourseFactory(title="Python basics", topic="code", price=Decimal(99), level="beginner")
    CourseFactory(title="Data viz", title_zh="数据可视化", topic="data", price=Decimal(299), level="advanced")
    CourseFactory(title="Tagged", tags=["spark"], topic="data", price=Decimal(10))
    url = reverse("members:course_list")
    assert [c.title for c in client.get(url, {"q": "数据"}).context["page"]] == ["Data viz"]
    assert [c.title for c in client.get(url, {"q": "spark"}).context["page"]] == ["Tagged"]
    assert {c.title for c in client.get(url, {"topic": "data"}).context["page"]} == {"Data viz", "Tagged"}
    assert [c.title for c in client.get(url, {"level": "advanced"}).context["page"]] == ["Data viz"]
    assert [c.title for c in client.get(url, {"price_min": "50", "price_max": "150"}).context["page"]] == ["Python basics"]
    assert [c.title for c in client.get(url, {"sort": "price"}).context["page"]] == ["Tagged", "Python basics", "Data viz"]
    fragment = client.get(url, {"sort": "title"}, **HX)
    assert b"<html" not in fragment.content and b'id="results"' in fragment.content
    full = client.get(url)
    assert b"<html" in full.content and b'hx-push-url="true"' in full.content


def test_catalogue_included_filter_depends_on_tier(client, alice):
    CourseFactory(title="Any")
    client.force_login(alice)
    assert len(client.get(reverse("members:course_list"), {"included": "on"}).context["page"].object_list) == 0
    tier = TierFactory()
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    SubscriptionFactory(member=alice, tier=tier)
    assert len(client.get(reverse("members:course_list"), {"included": "on"}).context["page"].object_list) == 1


def test_catalogue_query_count_is_constant(client, django_assert_num_queries):
    for _ in range(15):
        CourseFactory()
    # topics, count, page of courses (popularity annotated) — no per-course queries.
    with django_assert_num_queries(3):
        response = client.get(reverse("members:course_list"), {"page": 2})
    assert response.status_code == 200


def test_catalogue_sorts_by_rating_and_hidden_reviews_do_not_count(client):
    good, fair, _unrated = CourseFactory(title="Good"), CourseFactory(title="Fair"), CourseFactory(title="Unrated")
    for rating in (5, 4):
        Review.objects.create(member=EnrollmentFactory(course=good).member, course=good, rating=rating)
    Review.objects.create(member=EnrollmentFactory(course=fair).member, course=fair, rating=4)
    # Hidden by staff: if it counted, Fair would average 5.0 and lead.
    for _ in range(3):
        Review.objects.create(member=EnrollmentFactory(course=fair).member, course=fair, rating=5, is_hidden=True)
    # Extra enrollments must not multiply the review count (two to-many annotations on one query).
    EnrollmentFactory.create_batch(2, course=good)
    response = client.get(reverse("members:course_list"), {"sort": "rating"})
    courses = list(response.context["page"].object_list)
    assert [c.title for c in courses] == ["Good", "Fair", "Unrated"]
    assert (courses[0].avg_rating, courses[0].rating_count) == (4.5, 2)
    assert (courses[1].avg_rating, courses[1].rating_count) == (4.0, 1)
    assert courses[2].avg_rating is None and courses[2].rating_count == 0
    assert courses[0].popularity == 4
    body = response.content.decode()
    assert "★ 4.5 (2)" in body and "★ 4.0 (1)" in body


def test_catalogue_paginates_with_filters_kept(client):
    for _ in range(14):
        CourseFactory(topic="data")
    body = client.get(reverse("members:course_list"), {"topic": "data"}).content.decode()
    assert "topic=data&amp;page=2" in body


def test_course_page_shows_lessons_audience_price_and_related(client, alice):
    course = CourseFactory(title="Main", audience="Analysts who want more", topic="data", price=Decimal(199))
    LessonFactory(course=course, position=1, title="Welcome", is_preview=True)
    LessonFactory(course=course, position=2, title="Locked one")
    CourseFactory(title="Sibling", topic="data", tags=["excel"])
    CourseFactory(title="Tag cousin", topic="other", tags=["python", "ml"])
    CourseFactory(title="Stranger", topic="art", tags=["pythonic-painting"])
    body = client.get(course.get_absolute_url()).content.decode()
    assert "Analysts who want more" in body and "Welcome" in body and "¥199.00" in body
    assert "Sibling" in body and "Tag cousin" in body and "Stranger" not in body
    tier = TierFactory()
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    SubscriptionFactory(member=alice, tier=tier)
    client.force_login(alice)
    assert "Included in your membership" in client.get(course.get_absolute_url()).content.decode()


def test_unpublished_course_is_404(client):
    course = CourseFactory(is_published=False)
    assert client.get(course.get_absolute_url()).status_code == 404


# --------------------------------------------------------------------------------------------------------------
# Membership pages


def _gold(trial_days: int = 0) -> object:
    tier = TierFactory(name="Gold", slug="gold", trial_days=trial_days)
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    return tier


def test_tier_page_lists_benefits(client):
    _gold(trial_days=7)
    body = client.get(reverse("members:tiers")).content.decode()
    assert "All-course access" in body and "Start free trial" in body


def test_membership_page_needs_login_and_shows_card(client, alice):
    assert client.get(reverse("members:membership")).status_code == 302
    SubscriptionFactory(member=alice, tier=_gold())
    client.force_login(alice)
    body = client.get(reverse("members:membership")).content.decode()
    assert "Gold" in body and "Cancel membership" in body and "Switch to yearly billing" in body


def test_switch_period(client, alice):
    sub = SubscriptionFactory(member=alice, tier=_gold())
    client.force_login(alice)
    client.post(reverse("members:membership_switch"), {"period": "year"})
    sub.refresh_from_db()
    assert sub.billing_period == "year"


def test_cancel_shows_save_offer_before_cancelling_and_discount_issues_coupon(client, alice):
    tier = _gold()
    sub = SubscriptionFactory(member=alice, tier=tier)
    offer = RetentionOffer.objects.create(name="Stay 30", kind="discount", percent_off=Decimal(30),
                                          headline="Stay for less")
    offer.tiers.add(tier)
    client.force_login(alice)
    assert client.get(reverse("members:membership_cancel")).status_code == 200
    response = client.post(reverse("members:membership_cancel"), {"reason": "too_expensive", "action": "survey"})
    assert b"Stay for less" in response.content and b"30% off" in response.content
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end  # the offer comes before anything is final
    client.post(reverse("members:membership_cancel"), {"reason": "too_expensive", "action": "accept"})
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    coupon = Coupon.objects.get(assigned_member=alice, source=Coupon.Source.RETENTION)
    assert coupon.percent_off == Decimal(30)
    # Renewing now applies the save-offer coupon.
    response = client.post(reverse("members:membership_renew"), {"payment_token": "local:ok"})
    assert response.status_code == 302
    order = alice.orders.get(is_renewal=True)
    assert order.coupon == coupon and order.amount_paid == Decimal("34.30")


def test_cancel_with_pause_offer_sets_paused_until(client, alice):
    tier = _gold()
    sub = SubscriptionFactory(member=alice, tier=tier)
    RetentionOffer.objects.create(name="Pause", kind="pause", pause_days=30)
    client.force_login(alice)
    client.post(reverse("members:membership_cancel"), {"reason": "not_using", "action": "accept"})
    sub.refresh_from_db()
    assert sub.paused_until == sub.current_period_end + timedelta(days=30)
    assert not sub.cancel_at_period_end


def test_cancel_confirm_then_reactivate(client, alice):
    sub = SubscriptionFactory(member=alice, tier=_gold())
    RetentionOffer.objects.create(name="Pause", kind="pause", pause_days=30)
    client.force_login(alice)
    client.post(reverse("members:membership_cancel"), {"reason": "content", "action": "confirm"})
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.cancellation_reason == "content"
    assert "Keep my membership" in client.get(reverse("members:membership")).content.decode()
    client.post(reverse("members:membership_reactivate"))
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end


def test_cancel_without_offer_cancels_after_survey(client, alice):
    sub = SubscriptionFactory(member=alice, tier=_gold())
    client.force_login(alice)
    client.post(reverse("members:membership_cancel"), {"reason": "finished", "action": "survey"})
    sub.refresh_from_db()
    assert sub.cancel_at_period_end


def test_cancel_requires_reason(client, alice):
    SubscriptionFactory(member=alice, tier=_gold())
    client.force_login(alice)
    response = client.post(reverse("members:membership_cancel"), {"action": "confirm"})
    assert response.status_code == 200 and response.context["form"].errors


# --------------------------------------------------------------------------------------------------------------
# Orders


def test_order_list_own_only_fragment_and_query_count(client, alice, bob, django_assert_num_queries):
    for _ in range(5):
        OrderFactory(member=alice)
    OrderFactory(member=bob, course=CourseFactory(title="Bobs secret"))
    client.force_login(alice)
    client.get(reverse("members:order_list"))  # warm the session/user cache outside the pinned block
    # session, user, count, page of orders (joined) — plus the header's notification count.
    with django_assert_num_queries(5):
        response = client.get(reverse("members:order_list"))
    assert len(response.context["page"].object_list) == 5
    assert b"Bobs secret" not in response.content
    fragment = client.get(reverse("members:order_list"), **HX)
    assert b"<html" not in fragment.content and b'id="orders"' in fragment.content


def test_order_detail_permissions(client, alice, bob, charlie):
    order = OrderFactory(member=alice)
    url = order.get_absolute_url()
    assert client.get(url).status_code == 302
    client.force_login(bob)
    assert client.get(url).status_code == 404
    client.force_login(charlie)
    assert client.get(url).status_code == 404  # staff use the admin, not another member's receipt page
    client.force_login(alice)
    assert client.get(url).status_code == 200


def test_money_is_formatted_with_symbol_per_locale(client):
    course = CourseFactory(price=Decimal("1299.50"))
    body = client.get(course.get_absolute_url()).content.decode()
    assert "¥1,299.50" in body
    client.cookies["django_language"] = "zh-hans"
    body = client.get(course.get_absolute_url()).content.decode()
    # Django's zh_Hans formats group by ten-thousands with no separator.
    assert "¥1299.50" in body and 'lang="zh-hans"' in body


def test_expired_subscription_is_not_live_on_home(client, alice):
    SubscriptionFactory(member=alice, tier=_gold(), status=Subscription.Status.EXPIRED,
                        current_period_end=timezone.now() - timedelta(days=1),
                        current_period_start=timezone.now() - timedelta(days=31))
    client.force_login(alice)
    assert "You are not a member yet." in client.get(reverse("members:home")).content.decode()


def test_dates_use_the_members_time_zone(client, alice):
    from members.models import Order

    order = OrderFactory(member=alice)
    Order.objects.filter(pk=order.pk).update(created_at=datetime(2026, 1, 1, 23, 30, tzinfo=UTC))
    alice.time_zone = "Asia/Shanghai"
    alice.save()
    client.force_login(alice)
    body = client.get(order.get_absolute_url()).content.decode()
    assert "Jan. 2, 2026, 7:30 a.m." in body  # 23:30 UTC is 07:30 next day in Shanghai
    client.logout()
    assert client.get(reverse("members:home")).status_code == 200


def test_receipt_email_is_in_the_members_language(client, alice):
    from members.commerce import receipts

    alice.preferred_language = "zh-hans"
    alice.save()
    order = OrderFactory(member=alice, amount_paid=Decimal("88.00"))
    receipts.send_order_receipt(order=order)
    message = mail.outbox[-1]
    assert message.subject.startswith("您购买")
    assert "感谢您的购买" in message.body and "¥88.00" in message.body
    assert "感谢您的购买" in message.alternatives[0][0]


def test_catalogue_query_count_for_a_member_is_constant(client, alice, django_assert_num_queries):
    tier = TierFactory()
    BenefitFactory(tier=tier, kind=Benefit.Kind.ALL_COURSES)
    SubscriptionFactory(member=alice, tier=tier)
    for _ in range(15):
        EnrollmentFactory(member=alice, course=CourseFactory())
    client.force_login(alice)
    client.get(reverse("members:course_list"))
    # session, user, topics, count, page, owned ids, tier (+ benefits prefetch), header unread count.
    with django_assert_num_queries(9):
        response = client.get(reverse("members:course_list"), {"sort": "popular"})
    assert len(response.context["page"].object_list) == 12


def test_history_restore_gets_the_full_page_and_responses_vary_on_htmx(client):
    CourseFactory()
    url = reverse("members:course_list")
    restore = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in restore.content
    assert "HX-Request" in client.get(url)["Vary"]


def test_password_reset_link_sets_a_new_password(client, alice):
    import re as _re

    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    link = _re.search(r"http://[^/]+(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    response = client.post(form_page.redirect_chain[-1][0], {"new_password1": "brand-new-pass-77",
                                                             "new_password2": "brand-new-pass-77"})
    assert response.status_code == 302
    assert client.login(username="alice@example.com", password="brand-new-pass-77")


PAGES = [
    # (url name or path builder, anonymous, owner/member)
    ("members:home", 200, 200),
    ("members:course_list", 200, 200),
    ("members:tiers", 200, 200),
    ("members:order_list", 302, 200),
    ("members:membership", 302, 200),
    ("profile", 302, 200),
    ("signup", 200, 302),
    ("login", 200, 200),
    ("password_reset", 200, 200),
    ("community:feed", 200, 200),
    ("community:notifications", 302, 200),
    ("community:post_create", 302, 200),
    ("recs:row", 200, 200),
]


@pytest.mark.parametrize(("name", "anonymous", "member"), PAGES)
@pytest.mark.parametrize("htmx", [False, True])
def test_every_page_answers_full_and_htmx_for_each_role(client, alice, charlie, name, anonymous, member, htmx):
    extra = HX if htmx else {}
    assert client.get(reverse(name), **extra).status_code == anonymous
    for who in (alice, charlie):
        client.force_login(who)
        assert client.get(reverse(name), **extra).status_code == member
        client.logout()


def test_object_pages_for_each_role(client, alice, bob, charlie):
    course = CourseFactory()
    LessonFactory(course=course, position=1)
    EnrollmentFactory(member=alice, course=course)
    urls = {
        course.get_absolute_url(): (200, 200, 200, 200),
        reverse("learning:lesson_detail", args=[course.slug, 1]): (403, 200, 403, 403),
        reverse("members:checkout_course", args=[course.slug]): (302, 302, 200, 200),  # alice owns it: redirect
    }
    for url, (anon, owner, other, staff) in urls.items():
        assert client.get(url).status_code == anon, url
        for who, expected in ((alice, owner), (bob, other), (charlie, staff)):
            client.force_login(who)
            assert client.get(url).status_code == expected, (url, who)
            assert client.get(url, **HX).status_code == expected, (url, who)
        client.logout()


def test_tier_table_shows_discount_as_percent(client):
    tier = TierFactory(name="Silver")
    BenefitFactory(tier=tier, kind=Benefit.Kind.COURSE_DISCOUNT, value=Decimal("15"))
    body = client.get(reverse("members:tiers")).content.decode()
    assert "Course discount %" in body and ">15%" in body


def test_nav_links_to_invite_and_my_data_for_members_only(client, alice):
    invite, my_data = reverse("members:invite"), reverse("members:my_data")
    body = client.get(reverse("members:course_list")).content.decode()
    assert f'href="{invite}"' not in body and f'href="{my_data}"' not in body
    client.force_login(alice)
    body = client.get(reverse("members:course_list")).content.decode()
    assert f'href="{invite}"' in body and f'href="{my_data}"' in body


# --------------------------------------------------------------------------------------------------------------
# Honest words (issue 18 item 4)


def test_trial_checkout_shows_nothing_due_today_and_the_first_charge(client, alice):
    tier = TierFactory(slug="plus", monthly_price=Decimal("79.00"), trial_days=7)
    client.force_login(alice)
    body = client.get(reverse("members:checkout_tier", args=["plus"])).content.decode()
    due_today = body.split('id="quote-total">', 1)[1].split("<", 1)[0]
    assert due_today == "¥0.00"
    assert '<dd id="first-charge">¥79.00</dd>' in body and "First charge on" in body
    assert "Start free trial" in body and "Pay now" not in body
    # Unticking the trial (the checkbox is absent from the submitted query) charges today and says so.
    body = client.get(reverse("members:checkout_tier", args=["plus"]), {"trial_choice": "1", "coupon": ""}).content.decode()
    assert body.split('id="quote-total">', 1)[1].split("<", 1)[0] == "¥79.00"
    assert "first-charge" not in body and "Pay ¥79.00 now" in body
    assert tier.trial_days == 7


def test_signup_consent_box_starts_unticked_and_consent_is_recorded_with_its_time(client):
    body = client.get(reverse("signup")).content.decode()
    box = body.split('name="marketing_opt_in"', 1)[1].split(">", 1)[0]
    assert "checked" not in box
    client.post(reverse("signup"), {"email": "no@example.com", "display_name": "No", "password": "pw-long-enough-1",
                                    "preferred_language": "en"})
    quiet = User.objects.get(email="no@example.com")
    assert quiet.marketing_opt_in is False and quiet.marketing_consent_at is None
    client.logout()
    client.post(reverse("signup"), {"email": "yes@example.com", "display_name": "Yes", "password": "pw-long-enough-1",
                                    "preferred_language": "en", "marketing_opt_in": "on"})
    keen = User.objects.get(email="yes@example.com")
    assert keen.marketing_opt_in is True and keen.marketing_consent_at is not None
