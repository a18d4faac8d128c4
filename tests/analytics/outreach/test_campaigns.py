"""Campaigns: deterministic assignment, guardrails, exactly-once offers, conversion tracking and the uplift maths."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from analytics.models import (
    Campaign,
    CampaignAssignment,
    Event,
    MessageLog,
    ModelVersion,
    PropensityScore,
    ReminderRule,
)
from analytics.outreach import campaigns
from analytics.outreach.tasks import run_campaigns
from members.commerce import services
from members.models import Coupon, Order, Subscription
from tests.members.factories import (
    CourseFactory,
    SubscriptionFactory,
    TierFactory,
    UserFactory,
)

T, C = CampaignAssignment.Group.TREATMENT, CampaignAssignment.Group.CONTROL


def _scored_members(n: int, probability: float = 0.2, **user_kwargs):
    version = ModelVersion.objects.first() or ModelVersion.objects.create(as_of=timezone.now(), horizon_days=30,
                                                                          algorithm="test")
    members = [UserFactory(**user_kwargs) for _ in range(n)]
    PropensityScore.objects.bulk_create([
        PropensityScore(member=m, model_version=version, probability=probability, as_of=timezone.now() - timedelta(hours=1))
        for m in members
    ])
    return members


def _campaign(**kwargs) -> Campaign:
    defaults = {"name": "Win them back", "status": Campaign.Status.ACTIVE, "audience": Campaign.Audience.AT_RISK,
                "min_churn_risk": 0.5, "percent_off": Decimal(20), "validity_days": 14,
                "starts_at": timezone.now() - timedelta(days=1), "cooldown_days": 30}
    defaults.update(kwargs)
    return Campaign.objects.create(**defaults)


# ---------------------------------------------------------------------------------------------------- assignment

def test_hash_split_matches_holdout_share_for_10000_members():
    for share in (0.2, 0.5):
        control = sum(
            campaigns.assignment_group(campaign_id=7, member_id=m, holdout_share=share) == C for m in range(1, 10_001)
        )
        # Binomial sd at n=10,000 is ≤ 0.005; ±0.015 is three sd.
        assert abs(control / 10_000 - share) < 0.015


def test_assignment_is_a_pure_function_of_campaign_and_member():
    groups = [campaigns.assignment_group(campaign_id=3, member_id=m, holdout_share=0.2) for m in range(500)]
    assert groups == [campaigns.assignment_group(campaign_id=3, member_id=m, holdout_share=0.2) for m in range(500)]
    # A different campaign reshuffles (independent experiments), so the two splits differ somewhere.
    assert groups != [campaigns.assignment_group(campaign_id=4, member_id=m, holdout_share=0.2) for m in range(500)]


def test_db_run_assigns_everyone_once_with_the_expected_split_and_never_reshuffles(db, django_capture_on_commit_callbacks):
    members = _scored_members(300)
    campaign = _campaign(holdout_share=Decimal("0.300"))
    with django_capture_on_commit_callbacks(execute=True):
        first = campaigns.campaign_run(campaign=campaign)
    before = dict(CampaignAssignment.objects.values_list("member_id", "group"))
    coupons_before = set(Coupon.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        second = campaigns.campaign_run(campaign=campaign)
    assert first.assigned == 300 and second.assigned == 0
    assert dict(CampaignAssignment.objects.values_list("member_id", "group")) == before
    assert set(Coupon.objects.values_list("pk", flat=True)) == coupons_before
    share = sum(g == C for g in before.values()) / len(members)
    assert abs(share - 0.3) < 0.1  # n=300: sd 0.026
    for member_id, group in before.items():
        assert group == campaigns.assignment_group(campaign_id=campaign.pk, member_id=member_id, holdout_share=0.3)


def test_treatment_gets_a_personal_single_use_coupon_and_one_email_control_gets_nothing(db, django_capture_on_commit_callbacks):
    _scored_members(40)
    campaign = _campaign()
    with django_capture_on_commit_callbacks(execute=True):
        run_campaigns.delay().get()
    with django_capture_on_commit_callbacks(execute=True):
        run_campaigns.delay().get()
    treatment = CampaignAssignment.objects.filter(campaign=campaign, group=T).select_related("coupon", "member")
    control = CampaignAssignment.objects.filter(campaign=campaign, group=C)
    assert treatment.count() > 0 and control.count() > 0
    for a in treatment:
        assert a.coupon.assigned_member_id == a.member_id
        assert a.coupon.max_redemptions == 1 and a.coupon.source == Coupon.Source.CAMPAIGN
        assert a.coupon.valid_until - a.coupon.valid_from == timedelta(days=14)
        assert a.emailed_at is not None
    assert not control.filter(coupon__isnull=False).exists()
    assert Coupon.objects.filter(source=Coupon.Source.CAMPAIGN).count() == treatment.count()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(a.member.email for a in treatment)
    assert MessageLog.objects.filter(kind=MessageLog.Kind.CAMPAIGN, status=MessageLog.Status.SENT).count() == treatment.count()
    assert Event.objects.filter(kind="campaign_email_sent").count() == treatment.count()


# ---------------------------------------------------------------------------------------------------- guardrails

def test_guardrails_probability_opt_in_live_coupon_and_cooldown(db, django_capture_on_commit_callbacks):
    ok = _scored_members(1)[0]
    sure_buyer = _scored_members(1, probability=0.45)[0]  # churn risk 0.55 fits the band, but probability > 0.4
    opted_out = _scored_members(1, marketing_opt_in=False)[0]
    holder = _scored_members(1)[0]
    services.coupon_issue(member=holder, percent_off=Decimal(10), source=Coupon.Source.CAMPAIGN, valid_days=10)
    cooling = _scored_members(1)[0]
    old = services.coupon_issue(member=cooling, percent_off=Decimal(10), source=Coupon.Source.CAMPAIGN,
                                valid_days=5, when=timezone.now() - timedelta(days=20))  # expired, but recent
    assert not old.is_within_window()
    low_risk = _scored_members(1, probability=0.9)[0]
    campaign = _campaign(max_probability=0.4, holdout_share=Decimal("0.01"))
    with django_capture_on_commit_callbacks(execute=True):
        campaigns.campaign_run(campaign=campaign)
    assigned = set(CampaignAssignment.objects.values_list("member_id", flat=True))
    assert ok.pk in assigned
    assert assigned.isdisjoint({sure_buyer.pk, opted_out.pk, holder.pk, cooling.pk, low_risk.pk})


def test_at_most_one_live_campaign_coupon_across_campaigns(db, django_capture_on_commit_callbacks):
    members = _scored_members(30)
    first = _campaign(holdout_share=Decimal("0.01"))
    second = _campaign(name="Second", holdout_share=Decimal("0.01"), cooldown_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        campaigns.campaign_run(campaign=first)
        campaigns.campaign_run(campaign=second)
    for member in members:
        live = Coupon.objects.filter(assigned_member=member, source=Coupon.Source.CAMPAIGN).count()
        assert live <= 1
    # Only members the first campaign held out (no coupon) can be offered one by the second.
    first_control = set(CampaignAssignment.objects.filter(campaign=first, group=C).values_list("member_id", flat=True))
    second_treated = set(CampaignAssignment.objects.filter(campaign=second, group=T).values_list("member_id", flat=True))
    assert second_treated <= first_control


def test_daily_cap_limits_new_assignments_per_day(db):
    _scored_members(25)
    campaign = _campaign(daily_cap=10)
    now = timezone.now()
    midnight = (timezone.localtime(now) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now <= timedelta(minutes=5):  # the first two runs must fall on the same day (failed at 23:56)
        now = midnight + timedelta(minutes=1)
    assert campaigns.campaign_run(campaign=campaign, when=now).assigned == 10
    assert campaigns.campaign_run(campaign=campaign, when=now + timedelta(minutes=5)).assigned == 0
    assert campaigns.campaign_run(campaign=campaign, when=now + timedelta(days=1)).assigned == 10
    assert campaigns.campaign_run(campaign=campaign, when=now + timedelta(days=2)).assigned == 5


def test_paused_campaign_stops_assignments_and_queued_emails(db, django_capture_on_commit_callbacks):
    _scored_members(20)
    campaign = _campaign(holdout_share=Decimal("0.01"))
    # Assign with the email still queued (the worker hasn't picked it up), then pause.
    with django_capture_on_commit_callbacks(execute=False):
        campaigns.campaign_run(campaign=campaign)
    # The hash split on (campaign, member) ids may hold out a member even at 1% (about one run in six with 20
    # members, as the ids differ from run to run on PostgreSQL): every treated member, and only they, get the email.
    treated = CampaignAssignment.objects.filter(campaign=campaign, group=T).count()
    assert treated >= 15 and MessageLog.objects.count() == treated
    campaigns.campaign_set_status(campaign=campaign, status=Campaign.Status.PAUSED)
    from analytics.outreach.messaging import message_send
    outcomes = {message_send(message_id=pk).status for pk in MessageLog.objects.values_list("pk", flat=True)}
    assert outcomes == {"held"} and mail.outbox == []
    assert set(MessageLog.objects.values_list("status", flat=True)) == {MessageLog.Status.QUEUED}
    _scored_members(5)
    assert campaigns.campaign_run(campaign=campaign).assigned == 0
    # Activated again: the held emails go out once.
    campaigns.campaign_set_status(campaign=campaign, status=Campaign.Status.ACTIVE)
    for pk in MessageLog.objects.values_list("pk", flat=True):
        message_send(message_id=pk)
    assert len(mail.outbox) == treated


def test_audiences_tier_renewal_due_lapsed_subscribers_and_lapsed_buyers(db):
    now = timezone.now()
    tier = TierFactory()
    in_tier = SubscriptionFactory(tier=tier).member
    SubscriptionFactory()  # other tier
    due_soon = SubscriptionFactory(current_period_end=now + timedelta(days=3)).member
    lapsed = SubscriptionFactory(status=Subscription.Status.EXPIRED, ended_at=now - timedelta(days=10)).member
    came_back = SubscriptionFactory(status=Subscription.Status.EXPIRED, ended_at=now - timedelta(days=10)).member
    SubscriptionFactory(member=came_back)
    course = CourseFactory()
    old_buyer, recent_buyer = UserFactory(), UserFactory()
    Order.objects.create(member=old_buyer, kind=Order.Kind.COURSE, course=course, list_price=10, amount_paid=10,
                         status=Order.Status.PAID, paid_at=now - timedelta(days=200))
    Order.objects.create(member=recent_buyer, kind=Order.Kind.COURSE, course=course, list_price=10, amount_paid=10,
                         status=Order.Status.PAID, paid_at=now - timedelta(days=200))
    Order.objects.create(member=recent_buyer, kind=Order.Kind.COURSE, course=CourseFactory(), list_price=10,
                         amount_paid=10, status=Order.Status.PAID, paid_at=now - timedelta(days=5))

    def audience(**kwargs):
        return {c.member_id for c in campaigns.campaign_audience(campaign=Campaign(name="x", **kwargs))}

    assert audience(audience=Campaign.Audience.TIER, tier=tier) == {in_tier.pk}
    assert audience(audience=Campaign.Audience.RENEWAL_DUE, days_to_renewal=7) == {due_soon.pk}
    assert audience(audience=Campaign.Audience.LAPSED_SUBSCRIBERS) == {lapsed.pk}
    assert audience(audience=Campaign.Audience.LAPSED_BUYERS, lapsed_days=90) == {old_buyer.pk}


# ---------------------------------------------------------------------------------------------------- conversions

def test_conversion_tracking_first_paid_order_in_window_for_both_groups(db):
    members = _scored_members(30)
    t0 = timezone.now() - timedelta(days=20)
    campaign = _campaign(conversion_window_days=10, starts_at=t0 - timedelta(days=1))
    campaigns.campaign_run(campaign=campaign, when=t0, notify=False)
    rows = {a.member_id: a for a in CampaignAssignment.objects.filter(campaign=campaign)}
    treated = next(a for a in rows.values() if a.group == T)
    control = next(a for a in rows.values() if a.group == C)
    late = next(a for a in rows.values() if a.group == C and a.pk != control.pk)
    # Treatment buys with its coupon on day 2; control pays full price on day 3; another control member on day 15.
    course = CourseFactory(price=Decimal("100.00"))
    bought = services.course_purchase(member=treated.member, course=course, coupon_code=treated.coupon.code,
                                      when=t0 + timedelta(days=2))
    services.course_purchase(member=control.member, course=course, when=t0 + timedelta(days=3))
    services.course_purchase(member=late.member, course=course, when=t0 + timedelta(days=15))
    services.course_purchase(member=treated.member, course=CourseFactory(), when=t0 + timedelta(days=4))
    assert campaigns.campaign_track_conversions(campaign=campaign) == 2
    assert campaigns.campaign_track_conversions(campaign=campaign) == 0
    treated.refresh_from_db()
    assert treated.conversion_order_id == bought.pk and treated.revenue == Decimal("80.00")
    result = campaigns.campaign_results(campaign)
    assert result.coupons_redeemed == 1 and result.coupons_issued == result.treatment.n
    assert result.discount_given == Decimal("20.00")
    assert result.treatment.conversions == 1 and result.control.conversions == 1
    assert len(members) == result.treatment.n + result.control.n


# ---------------------------------------------------------------------------------------------------- uplift maths

def test_uplift_and_intervals_against_a_hand_computed_example():
    # Treatment 30/100, control 20/100, z = 1.959964.
    # Wald: se = sqrt(.3·.7/100 + .2·.8/100) = sqrt(.0037) = .060828 → .10 ± .119222 = [-.019222, .219222]
    low, high = campaigns.wald_interval(30, 100, 20, 100)
    assert low == pytest.approx(-0.019222, abs=1e-5) and high == pytest.approx(0.219222, abs=1e-5)
    # Wilson 30/100: d = 1 + z²/n = 1.0384146, centre = (.3 + z²/200)/d = .3073914,
    #   half = z/d · sqrt(.3·.7/100 + z²/40000) = 1.8874551 · .0468630 = .0884515 → [.218949, .395849]
    # Wilson 20/100: centre = (.2 + .0192073)/d = .2110979, half = 1.8874551 · sqrt(.0016 + .0000960) = .0777310
    #   → [.133367, .288829]
    l1, u1 = campaigns.wilson_interval(30, 100)
    l2, u2 = campaigns.wilson_interval(20, 100)
    assert (l1, u1) == (pytest.approx(0.218949, abs=1e-5), pytest.approx(0.395849, abs=1e-5))
    assert (l2, u2) == (pytest.approx(0.133367, abs=1e-5), pytest.approx(0.288829, abs=1e-5))
    # Newcombe: L = .1 − sqrt((.3 − .218949)² + (.288829 − .2)²) = .1 − sqrt(.0065693 + .0078906) = .1 − .120249
    #             = −.020249
    #           U = .1 + sqrt((.395849 − .3)² + (.2 − .133367)²) = .1 + sqrt(.0091871 + .0044400) = .1 + .116734
    #             = .216734
    low, high = campaigns.newcombe_interval(30, 100, 20, 100)
    assert low == pytest.approx(-0.020249, abs=1e-5) and high == pytest.approx(0.216734, abs=1e-5)


def test_incremental_revenue_arithmetic():
    treatment = campaigns.GroupResult(n=100, conversions=30, revenue=Decimal("2400.00"))  # paid after coupons
    control = campaigns.GroupResult(n=25, conversions=5, revenue=Decimal("500.00"))
    # Gross per treated member (2400 + 600 discount)/100 = 30; control 500/25 = 20; (30 − 20)·100 − 600 = 400.
    value = campaigns.incremental_revenue(treatment=treatment, control=control, discount_given=Decimal("600.00"),
                                          treatment_coupon_discount=Decimal("600.00"))
    assert value == Decimal("400.00")
    assert treatment.rate == 0.3 and control.revenue_per_member == Decimal("20.00")


def test_coupon_share_of_a_discount_after_the_tier_discount():
    coupon = Coupon(discount_type=Coupon.DiscountType.PERCENT, percent_off=Decimal(20))
    # List 100, tier 10% → 90, coupon 20% → 18 off, paid 72, order discount 28.
    assert campaigns.coupon_part_of_discount(order_discount=Decimal("28.00"), amount_paid=Decimal("72.00"),
                                             coupon=coupon) == Decimal("18.00")


# ---------------------------------------------------------------------------------------------------- admin

def test_campaign_admin_page_shows_measured_results_and_pause_stops_it(staff_client, django_capture_on_commit_callbacks):
    from django.urls import reverse

    _scored_members(40)
    campaign = _campaign(holdout_share=Decimal("0.5"))
    campaigns.campaign_run(campaign=campaign, notify=False)
    assert CampaignAssignment.objects.filter(group=C).exists() and CampaignAssignment.objects.filter(group=T).exists()
    response = staff_client.get(reverse("admin:analytics_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Measured results" in body and "campaign-results" in body and "95% CI" in body
    response = staff_client.post(reverse("admin:analytics_campaign_changelist"),
                                 {"action": "pause_campaigns", "_selected_action": [campaign.pk]})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    staff_client.post(reverse("admin:analytics_campaign_changelist"),
                      {"action": "activate_campaigns", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE


# ---------------------------------------------------------------------------------------------------- simulation

def test_simulated_campaign_writes_real_orders_and_measures_the_coupon_effect(db):
    from analytics.management.commands.simulate_campaign import simulate_campaign

    _scored_members(300, probability=0.1)
    for _ in range(3):
        CourseFactory(price=Decimal("100.00"))
    outcome = simulate_campaign(days_ago=40, window=30, holdout=Decimal("0.5"), lift=1.5, seed=3)
    r = outcome.result
    assert r.treatment.n + r.control.n == 300 and r.control.n > 100
    # Every conversion is a real paid order after assignment; treatment conversions used the campaign coupon.
    converted = CampaignAssignment.objects.filter(campaign=outcome.campaign, converted_at__isnull=False)
    assert converted.count() == r.treatment.conversions + r.control.conversions == outcome.purchases
    for a in converted.select_related("conversion_order"):
        assert a.conversion_order.status == Order.Status.PAID and a.conversion_order.paid_at > a.assigned_at
        expected_coupon = a.coupon_id if a.group == T else None
        assert a.conversion_order.coupon_id == expected_coupon and (a.group == C or expected_coupon is not None)
    assert r.coupons_redeemed == r.treatment.conversions
    # A strong coupon effect (+1.5 logits on a 10% base) is detected: the CI is finite, non-trivial and above 0.
    assert 0 < r.ci_low < r.uplift < r.ci_high < 1
    assert r.discount_given == Decimal("20.00") * r.coupons_redeemed
    outcome.campaign.refresh_from_db()
    assert outcome.campaign.status == Campaign.Status.FINISHED


def test_setup_demo_actions_is_idempotent(db):
    from django.core.management import call_command

    call_command("setup_demo_actions")
    call_command("setup_demo_actions")
    assert sorted(ReminderRule.objects.values_list("days_before", "billing_period")) == sorted(
        [(d, p) for d in (14, 7, 1) for p in ("month", "year")])
    assert Campaign.objects.filter(status=Campaign.Status.ACTIVE).count() == 1


def test_a_campaign_past_its_end_is_finished_and_assigns_nobody(db):
    _scored_members(5)
    ended = _campaign(ends_at=timezone.now() - timedelta(hours=1))
    summary = campaigns.campaigns_run_all()
    ended.refresh_from_db()
    assert ended.status == Campaign.Status.FINISHED and summary.assigned == 0
    assert not CampaignAssignment.objects.exists()
