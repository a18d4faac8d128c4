"""Targeted coupon campaigns with a randomized holdout, and the measurement of what they achieved.

Pipeline, run daily by analytics.tasks.run_campaigns (method and formulas in docs/CAMPAIGNS.md):

1. audience   — members matching the campaign's criteria (churn-risk band from the latest PropensityScore, segment
                from the latest SegmentAssignment, tier, days to renewal, lapsed subscribers, lapsed course buyers).
2. guardrails — applied *before* randomisation, to both groups alike, so treatment and control stay comparable:
                marketing consent, predicted probability ≤ max_probability, no live campaign coupon, cool-down.
3. assignment — group from sha256("<campaign>:<member>") mapped to [0, 1): ≥ holdout_share → treatment. Stored in
                CampaignAssignment, unique (campaign, member): reruns never reshuffle and never re-issue.
4. offer      — treatment only: a personal single-use coupon (members.services.coupon_issue) and an email
                (MessageLog "campaign:<campaign>:<member>", exactly once). Control gets nothing.
5. conversion — for both groups, the first paid order within conversion_window_days after assignment.
6. results    — campaign_results(): rates, absolute uplift with a 95% Newcombe (hybrid score) interval, revenue.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from analytics.models import Campaign, CampaignAssignment, JobRun, MessageLog
from analytics.outreach.messaging import message_create, messages_requeue_stale
from analytics.outreach.reminders import latest_probability_by_member, latest_segment_by_member
from members.accounts import selectors as account_selectors
from members.commerce import selectors as commerce_selectors
from members.commerce.pricing import money
from members.commerce.selectors import CouponDiscountType, CouponSource, OrderKind, OrderStatus
from members.commerce.services import coupon_issue
from members.subscriptions import selectors as subscription_selectors
from members.subscriptions.selectors import LIVE_STATUSES, SubscriptionStatus

logger = logging.getLogger(__name__)

Z_95 = 1.959963984540054
ZERO = Decimal("0.00")
DEFAULT_LAPSED_DAYS = 90


# ---------------------------------------------------------------------------------------------------- assignment


def hash_unit(key: str) -> float:
    """sha256 of the key, first 64 bits, as a uniform number in [0, 1)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def assignment_group(*, campaign_id: int, member_id: int, holdout_share: float | Decimal) -> str:
    unit = hash_unit(f"{campaign_id}:{member_id}")
    return CampaignAssignment.Group.TREATMENT if unit >= float(holdout_share) else CampaignAssignment.Group.CONTROL


def _cap_order(campaign_id: int, member_id: int) -> float:
    # The daily cap takes candidates in this order. A *different* hash from the group hash: ordering by the group
    # hash would fill the cap with control members first and bias the day's split.
    return hash_unit(f"order:{campaign_id}:{member_id}")


# ---------------------------------------------------------------------------------------------------- audience


@dataclass(frozen=True)
class Candidate:
    member_id: int
    probability: float | None


def _live_subscriptions() -> QuerySet[Any]:
    return subscription_selectors.subscriptions().filter(status__in=LIVE_STATUSES)


def campaign_audience(*, campaign: Campaign, when: datetime | None = None) -> list[Candidate]:
    """Members matching the campaign's criteria, before guardrails. Criteria that are set combine with AND."""
    when = when or timezone.now()
    members = account_selectors.users().filter(is_active=True, is_staff=False, anonymized_at__isnull=True)
    audience = campaign.audience
    if audience == Campaign.Audience.TIER or campaign.tier_id:
        members = members.filter(pk__in=_live_subscriptions().filter(tier_id=campaign.tier_id).values("member_id"))
    if audience == Campaign.Audience.RENEWAL_DUE or campaign.days_to_renewal is not None:
        days = campaign.days_to_renewal if campaign.days_to_renewal is not None else 14
        members = members.filter(pk__in=_live_subscriptions().filter(
            cancel_at_period_end=False, current_period_end__gt=when, current_period_end__lte=when + timedelta(days=days),
        ).values("member_id"))
    if audience == Campaign.Audience.LAPSED_SUBSCRIBERS:
        ended = subscription_selectors.subscriptions().filter(
            status__in=[SubscriptionStatus.EXPIRED, SubscriptionStatus.CANCELED], ended_at__lte=when
        )
        if campaign.lapsed_days:
            ended = ended.filter(ended_at__gte=when - timedelta(days=campaign.lapsed_days))
        members = members.filter(pk__in=ended.values("member_id")).exclude(
            pk__in=_live_subscriptions().values("member_id"))
    if audience == Campaign.Audience.LAPSED_BUYERS:
        lapsed_days = campaign.lapsed_days or DEFAULT_LAPSED_DAYS
        paid = commerce_selectors.orders().filter(status=OrderStatus.PAID, paid_at__lte=when)
        members = members.filter(pk__in=paid.filter(kind=OrderKind.COURSE).values("member_id")).exclude(
            pk__in=paid.filter(paid_at__gte=when - timedelta(days=lapsed_days)).values("member_id"))
    member_ids = list(members.values_list("pk", flat=True))
    probabilities = latest_probability_by_member(member_ids)
    needs_score = audience == Campaign.Audience.AT_RISK or campaign.min_churn_risk is not None or \
        campaign.max_churn_risk is not None
    if needs_score:
        low = campaign.min_churn_risk if campaign.min_churn_risk is not None else 0.0
        high = campaign.max_churn_risk if campaign.max_churn_risk is not None else 1.0
        member_ids = [m for m in member_ids if m in probabilities and low <= 1.0 - probabilities[m] <= high]
    if audience == Campaign.Audience.SEGMENT or campaign.segment:
        segments = latest_segment_by_member(member_ids)
        member_ids = [m for m in member_ids if segments.get(m) == campaign.segment]
    return [Candidate(member_id=m, probability=probabilities.get(m)) for m in member_ids]


# ---------------------------------------------------------------------------------------------------- guardrails


def live_campaign_coupon_members(*, member_ids: list[int] | None = None, when: datetime) -> set[int]:
    """Members holding an unexpired, unredeemed campaign coupon (from any campaign)."""
    qs = commerce_selectors.coupons().filter(source=CouponSource.CAMPAIGN, is_active=True,
                                             assigned_member__isnull=False, times_redeemed=0)
    qs = qs.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=when))
    if member_ids is not None:
        qs = qs.filter(assigned_member_id__in=member_ids)
    return set(qs.values_list("assigned_member_id", flat=True))


def cooling_down_members(*, cooldown_days: int, member_ids: list[int] | None = None, when: datetime) -> set[int]:
    """Members who were issued a campaign coupon within the cool-down."""
    if not cooldown_days:
        return set()
    qs = commerce_selectors.coupons().filter(source=CouponSource.CAMPAIGN, assigned_member__isnull=False,
                               created_at__gt=when - timedelta(days=cooldown_days), created_at__lte=when)
    if member_ids is not None:
        qs = qs.filter(assigned_member_id__in=member_ids)
    return set(qs.values_list("assigned_member_id", flat=True))


def _guardrail_reason(*, campaign: Campaign, member: Any, probability: float | None, when: datetime) -> str:
    if not member.marketing_opt_in:
        return "no_marketing_consent"
    if campaign.max_probability is not None and probability is not None and probability > campaign.max_probability:
        return "probability_above_max"
    if live_campaign_coupon_members(member_ids=[member.pk], when=when):
        return "live_campaign_coupon"
    if cooling_down_members(cooldown_days=campaign.cooldown_days, member_ids=[member.pk], when=when):
        return "cooling_down"
    return ""


def eligible_candidates(*, campaign: Campaign, when: datetime | None = None) -> list[Candidate]:
    """Audience minus guardrails minus members already assigned to this campaign, in cap order."""
    when = when or timezone.now()
    audience = campaign_audience(campaign=campaign, when=when)
    ids = [c.member_id for c in audience]
    assigned = set(CampaignAssignment.objects.filter(campaign=campaign).values_list("member_id", flat=True))
    opted_out = set(account_selectors.users().filter(pk__in=ids, marketing_opt_in=False).values_list("pk", flat=True))
    blocked = live_campaign_coupon_members(member_ids=ids, when=when) | cooling_down_members(
        cooldown_days=campaign.cooldown_days, member_ids=ids, when=when)
    eligible = [
        c for c in audience
        if c.member_id not in assigned and c.member_id not in opted_out and c.member_id not in blocked
        and not (campaign.max_probability is not None and c.probability is not None
                 and c.probability > campaign.max_probability)
    ]
    return sorted(eligible, key=lambda c: _cap_order(campaign.pk, c.member_id))


# ---------------------------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class CampaignRunSummary:
    campaigns: int = 0
    assigned: int = 0
    treatment: int = 0
    control: int = 0
    skipped: int = 0
    conversions: int = 0
    stopped: str = ""
    failed: tuple[int, ...] = ()


def _campaign_problem(campaign: Campaign) -> str:
    """Why this campaign cannot run, in the admin's words ("" when it can): the model's clean() and constraints."""
    try:
        campaign.full_clean(validate_unique=False)
    except ValidationError as exc:
        return "; ".join(f"{field}: {' '.join(msgs)}" if field != "__all__" else " ".join(msgs)
                         for field, msgs in exc.message_dict.items())
    return ""


def campaign_run_isolated(*, campaign: Campaign, when: datetime) -> CampaignRunSummary | None:
    """One campaign under its own JobRun ("run_campaign"). A campaign that cannot run (invalid settings, or any
    error while assigning) is marked failed there with the reason and skipped: it never stops the others.
    None when it failed."""
    run = JobRun.objects.create(job="run_campaign", as_of=when, params={"campaign": campaign.pk, "name": campaign.name})
    problem = _campaign_problem(campaign)
    if not problem:
        try:
            summary = campaign_run(campaign=campaign, when=when)
        except Exception as exc:  # recorded on the JobRun; the other campaigns go on
            logger.exception("campaign %s failed", campaign.pk)
            problem = f"{type(exc).__name__}: {exc}"
    if problem:
        JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.FAILED, finished_at=timezone.now(),
                                                error=f"Campaign “{campaign.name}” skipped: {problem}"[:4000])
        return None
    JobRun.objects.filter(pk=run.pk).update(
        status=JobRun.Status.SUCCEEDED, finished_at=timezone.now(), rows=summary.assigned,
        message=f"assigned {summary.assigned} (treatment {summary.treatment}), skipped {summary.skipped}"
                + (f", stopped: {summary.stopped}" if summary.stopped else ""),
    )
    return summary


def campaign_is_running(campaign: Campaign, when: datetime) -> bool:
    return (campaign.status == Campaign.Status.ACTIVE and campaign.starts_at <= when
            and (campaign.ends_at is None or when < campaign.ends_at))


def _day_bounds(when: datetime) -> tuple[datetime, datetime]:
    local = timezone.localtime(when)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def assignment_create(
    *, campaign: Campaign, candidate: Candidate, when: datetime | None = None, notify: bool = True
) -> str:
    """Assign one member. Returns treatment/control, or why not: stopped/capped/ineligible/exists.

    Locks, in order: the campaign row (so a pause takes effect at once and two runs can't both pass the daily cap),
    then the member row (so two *different* campaigns can't both hand this member a coupon past the guardrails).
    The unique (campaign, member) constraint is the last word if anything slips through.
    """
    when = when or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not campaign_is_running(locked, when):
            return "stopped"
        if locked.daily_cap is not None:
            start, end = _day_bounds(when)
            if CampaignAssignment.objects.filter(campaign=locked, assigned_at__gte=start, assigned_at__lt=end).count() >= locked.daily_cap:
                return "capped"
        member = account_selectors.users().select_for_update().get(pk=candidate.member_id)
        if CampaignAssignment.objects.filter(campaign=locked, member=member).exists():
            return "exists"
        if _guardrail_reason(campaign=locked, member=member, probability=candidate.probability, when=when):
            return "ineligible"
        group = assignment_group(campaign_id=locked.pk, member_id=member.pk, holdout_share=locked.holdout_share)
        try:
            with transaction.atomic():
                assignment = CampaignAssignment.objects.create(
                    campaign=locked, member=member, group=group, assigned_at=when,
                    probability_at_assignment=candidate.probability,
                )
        except IntegrityError:
            return "exists"
        if group == CampaignAssignment.Group.TREATMENT:
            coupon = coupon_issue(
                member=member,
                percent_off=locked.percent_off if locked.discount_type == "percent" else None,
                amount_off=locked.amount_off if locked.discount_type == "fixed" else None,
                applies_to=locked.applies_to, valid_days=locked.validity_days, source=CouponSource.CAMPAIGN,
                description=f"Campaign: {locked.name}"[:200], when=when,
            )
            assignment.coupon = coupon
            assignment.save(update_fields=["coupon"])
            if notify:
                message_create(
                    member=member, kind=MessageLog.Kind.CAMPAIGN, dedupe_key=f"campaign:{locked.pk}:{member.pk}",
                    context={"campaign_id": locked.pk, "coupon_id": coupon.pk}, when=when,
                )
    return group


def campaign_run(*, campaign: Campaign, when: datetime | None = None, notify: bool = True) -> CampaignRunSummary:
    when = when or timezone.now()
    conversions = campaign_track_conversions(campaign=campaign, when=when)
    if not campaign_is_running(campaign, when):
        return CampaignRunSummary(campaigns=1, conversions=conversions, stopped="not running")
    counts: dict[str, int] = defaultdict(int)
    stopped = ""
    for candidate in eligible_candidates(campaign=campaign, when=when):
        outcome = assignment_create(campaign=campaign, candidate=candidate, when=when, notify=notify)
        counts[outcome] += 1
        if outcome in ("stopped", "capped"):
            stopped = outcome
            break
    treatment, control = counts[CampaignAssignment.Group.TREATMENT], counts[CampaignAssignment.Group.CONTROL]
    return CampaignRunSummary(campaigns=1, assigned=treatment + control, treatment=treatment, control=control,
                              skipped=counts["exists"] + counts["ineligible"], conversions=conversions, stopped=stopped)


def campaigns_run_all(*, when: datetime | None = None) -> CampaignRunSummary:
    when = when or timezone.now()
    total = CampaignRunSummary()
    # Conversions are tracked for every campaign with assignments (a finished campaign's window may still be open).
    conversions = campaigns_track_conversions(when=when)
    # A campaign past its end stops for good; its queued emails are then suppressed, not held.
    Campaign.objects.filter(status=Campaign.Status.ACTIVE, ends_at__lte=when).update(status=Campaign.Status.FINISHED)
    for campaign in Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("pk"):
        summary = campaign_run_isolated(campaign=campaign, when=when)
        if summary is None:
            total = dataclasses.replace(total, campaigns=total.campaigns + 1, failed=(*total.failed, campaign.pk))
            continue
        total = CampaignRunSummary(
            campaigns=total.campaigns + 1, assigned=total.assigned + summary.assigned,
            treatment=total.treatment + summary.treatment, control=total.control + summary.control,
            skipped=total.skipped + summary.skipped, conversions=conversions, failed=total.failed,
        )
    messages_requeue_stale(kinds=[MessageLog.Kind.CAMPAIGN], when=when)
    return total


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Pause/activate/finish. A pause is seen by the very next assignment (it locks the row) and by every queued
    email (the sender re-reads the status before sending)."""
    if status not in Campaign.Status.values:
        raise ValueError(f"Unknown campaign status {status!r}")
    if status == Campaign.Status.ACTIVE:
        # A draft may be incomplete; an active campaign may not (the database agrees: campaign_* constraints).
        candidate = Campaign.objects.get(pk=campaign.pk)
        candidate.status = status
        problem = _campaign_problem(candidate)
        if problem:
            raise ValidationError(problem)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.status = status
    return campaign


# ---------------------------------------------------------------------------------------------------- conversions


def campaign_track_conversions(*, campaign: Campaign, when: datetime | None = None) -> int:
    """First paid order after assignment within the window → converted_at, conversion_order, revenue. Both groups."""
    when = when or timezone.now()
    window = timedelta(days=campaign.conversion_window_days)
    pending = list(CampaignAssignment.objects.filter(campaign=campaign, converted_at__isnull=True,
                                                     assigned_at__lt=when))
    if not pending:
        return 0
    first_assigned = min(a.assigned_at for a in pending)
    orders_by_member: dict[int, list[Any]] = defaultdict(list)
    for order in commerce_selectors.orders().filter(
        member_id__in=[a.member_id for a in pending], status=OrderStatus.PAID, paid_at__gt=first_assigned,
        paid_at__lte=when,
    ).order_by("paid_at", "pk").only("pk", "member_id", "paid_at", "amount_paid"):
        orders_by_member[order.member_id].append(order)
    converted = 0
    for assignment in pending:
        deadline = min(assignment.assigned_at + window, when)
        first = next((o for o in orders_by_member.get(assignment.member_id, [])
                      if assignment.assigned_at < o.paid_at <= deadline), None)
        if first is None:
            continue
        converted += CampaignAssignment.objects.filter(pk=assignment.pk, converted_at__isnull=True).update(
            converted_at=first.paid_at, conversion_order=first, revenue=first.amount_paid
        )
    return converted


def campaigns_track_conversions(*, when: datetime | None = None) -> int:
    when = when or timezone.now()
    total = 0
    for campaign in Campaign.objects.filter(assignments__converted_at__isnull=True).distinct():
        total += campaign_track_conversions(campaign=campaign, when=when)
    return total


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GroupResult:
    n: int
    conversions: int
    revenue: Decimal

    @property
    def rate(self) -> float | None:
        return self.conversions / self.n if self.n else None

    @property
    def revenue_per_member(self) -> Decimal:
        return money(self.revenue / self.n) if self.n else ZERO


@dataclass(frozen=True)
class CampaignResult:
    campaign_id: int
    treatment: GroupResult
    control: GroupResult
    uplift: float | None  # treatment rate − control rate (absolute, in proportion units)
    ci_low: float | None  # 95% Newcombe hybrid score interval (method 10, Newcombe 1998)
    ci_high: float | None
    wald_low: float | None  # the simple Wald interval, shown for comparison
    wald_high: float | None
    coupons_issued: int
    coupons_redeemed: int
    discount_given: Decimal  # campaign-coupon discount on every paid order that used one
    incremental_revenue: Decimal  # net of discount cost, see incremental_revenue()
    ci_method: str = "Newcombe hybrid score (Wilson), 95%"

    @property
    def significant(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None and (self.ci_low > 0 or self.ci_high < 0)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> tuple[float, float]:
    """95% CI for p1 − p2 from the two Wilson intervals (Newcombe 1998, method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def wald_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> tuple[float, float]:
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return (p1 - p2 - z * se, p1 - p2 + z * se)


def incremental_revenue(*, treatment: GroupResult, control: GroupResult, discount_given: Decimal,
                        treatment_coupon_discount: Decimal) -> Decimal:
    """(treatment revenue/member − control revenue/member) × treatment n − discounts given.

    Revenue per member is measured *gross* of the campaign coupon (amount paid + the coupon's discount on the
    conversion order), i.e. what the same orders would have brought at full price, and the coupons' cost is then
    subtracted once. When every coupon is used on the conversion order this equals the difference in what was
    actually paid, scaled to the treatment group."""
    if not treatment.n or not control.n:
        return ZERO
    gross_per_member = (treatment.revenue + treatment_coupon_discount) / treatment.n
    control_per_member = control.revenue / control.n
    return money((gross_per_member - control_per_member) * treatment.n - discount_given)


def coupon_part_of_discount(*, order_discount: Decimal, amount_paid: Decimal, coupon: Any) -> Decimal:
    """The campaign coupon's share of an order's discount (the rest is the member's tier discount).

    Pricing applies the tier discount first and the coupon to what remains, so for a percent coupon p:
    paid = rest × (1 − p/100) and coupon_off = rest × p/100 = paid × p / (100 − p)."""
    if coupon.discount_type == CouponDiscountType.PERCENT and coupon.percent_off is not None:
        pct = coupon.percent_off
        if pct >= 100:
            return money(order_discount)
        return min(money(order_discount), money(amount_paid * pct / (Decimal(100) - pct)))
    return min(money(order_discount), money(coupon.amount_off or ZERO))


def campaign_results(campaign: Campaign) -> CampaignResult:
    rows = list(CampaignAssignment.objects.filter(campaign=campaign).select_related("coupon", "conversion_order"))
    groups: dict[str, list[CampaignAssignment]] = {CampaignAssignment.Group.TREATMENT: [],
                                                   CampaignAssignment.Group.CONTROL: []}
    for row in rows:
        groups[row.group].append(row)

    def summarise(items: list[CampaignAssignment]) -> GroupResult:
        converted = [a for a in items if a.converted_at is not None]
        return GroupResult(n=len(items), conversions=len(converted),
                           revenue=money(sum((a.revenue for a in converted), ZERO)))

    treatment = summarise(groups[CampaignAssignment.Group.TREATMENT])
    control = summarise(groups[CampaignAssignment.Group.CONTROL])
    coupons = {a.coupon_id: a.coupon for a in groups[CampaignAssignment.Group.TREATMENT] if a.coupon_id}
    redeemed_orders = list(commerce_selectors.orders().filter(coupon_id__in=list(coupons), status=OrderStatus.PAID)
                           .only("pk", "coupon_id", "discount", "amount_paid"))
    discount_by_order = {
        o.pk: coupon_part_of_discount(order_discount=o.discount, amount_paid=o.amount_paid, coupon=coupons[o.coupon_id])
        for o in redeemed_orders
    }
    discount_given = money(sum(discount_by_order.values(), ZERO))
    treatment_coupon_discount = money(sum(
        (discount_by_order.get(a.conversion_order_id, ZERO) for a in groups[CampaignAssignment.Group.TREATMENT]
         if a.conversion_order_id), ZERO))
    uplift = ci = wald = None
    if treatment.n and control.n:
        uplift = treatment.conversions / treatment.n - control.conversions / control.n
        ci = newcombe_interval(treatment.conversions, treatment.n, control.conversions, control.n)
        wald = wald_interval(treatment.conversions, treatment.n, control.conversions, control.n)
    return CampaignResult(
        campaign_id=campaign.pk, treatment=treatment, control=control, uplift=uplift,
        ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
        wald_low=wald[0] if wald else None, wald_high=wald[1] if wald else None,
        coupons_issued=len(coupons),
        coupons_redeemed=len({o.coupon_id for o in redeemed_orders}),
        discount_given=discount_given,
        incremental_revenue=incremental_revenue(treatment=treatment, control=control, discount_given=discount_given,
                                                treatment_coupon_discount=treatment_coupon_discount),
    )
