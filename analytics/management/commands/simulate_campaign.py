"""Run a campaign as of a past date on the current database and let members respond, so its results can be measured.

    manage.py simulate_campaign [--days-ago 45] [--window 30] [--holdout 0.2] [--percent-off 20] [--seed 7]

What happens:
1. A campaign (at-risk audience by default: churn risk ≥ --min-churn-risk from the latest PropensityScore) is created
   with starts_at = as_of and assigned *as of that date* by the real code path (analytics.campaigns.campaign_run:
   guardrails, deterministic hash split, personal coupons for treatment). No email is sent for a past campaign.
2. Member responses are simulated with the demo behaviour model's coupon effect
   (members.demo.behaviour.COUPON_LOGIT_LIFT, +0.7 logits at average price sensitivity). Each member's base chance
   to buy within the window is their latest predicted probability rescaled to the window,
   p_w = 1 − (1 − p)^(window / horizon_days), or BASE_RATE when they have no score; treatment members buy with
   sigmoid(logit(p_w) + lift). Buyers purchase a course they don't own on a random day in the window through
   members.services.course_purchase — with their campaign coupon in treatment — so every conversion is a real paid
   Order (a declined card is a real failed order and no conversion).
3. Conversions are tracked and campaign_results() printed. The campaign is left 'finished'.

Orders the seeded history already holds inside the window count for both groups alike, as they would in production.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from analytics.models import Campaign, CampaignAssignment, ModelVersion
from analytics.outreach.campaigns import (
    CampaignResult,
    campaign_results,
    campaign_run,
    campaign_set_status,
    campaign_track_conversions,
)
from config.commands import BaseCommand
from members import exceptions
from members.catalogue import selectors as catalogue_selectors
from members.commerce.services import course_purchase

try:  # the demo seeder's behaviour model, when present
    from members.demo.behaviour import COUPON_LOGIT_LIFT
except ImportError:  # pragma: no cover - the demo package ships with the project
    COUPON_LOGIT_LIFT = 0.7

BASE_RATE = 0.08  # chance to buy within a 30-day window for a member without a score (demo monthly base 6-9%)


@dataclass(frozen=True)
class SimulationOutcome:
    campaign: Campaign
    result: CampaignResult
    purchases: int
    failed_payments: int


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def simulate_campaign(
    *, name: str = "", days_ago: int = 45, window: int = 30, holdout: Decimal = Decimal("0.2"),
    percent_off: Decimal = Decimal(20), min_churn_risk: float = 0.5, audience: str = Campaign.Audience.AT_RISK,
    seed: int = 7, lift: float = COUPON_LOGIT_LIFT, now: datetime | None = None,
) -> SimulationOutcome:
    now = now or timezone.now()
    as_of = now - timedelta(days=days_ago)
    campaign = Campaign.objects.create(
        name=name or f"Simulated: {audience} {percent_off}% off ({as_of:%Y-%m-%d})", status=Campaign.Status.ACTIVE,
        audience=audience, min_churn_risk=min_churn_risk if audience == Campaign.Audience.AT_RISK else None,
        percent_off=percent_off, applies_to="all", validity_days=window, holdout_share=holdout,
        starts_at=as_of - timedelta(seconds=1), ends_at=as_of + timedelta(days=1), conversion_window_days=window,
        created_at=as_of,
    )
    campaign_run(campaign=campaign, when=as_of, notify=False)
    horizon = (ModelVersion.objects.order_by("-created_at").values_list("horizon_days", flat=True).first() or 30)
    rng = np.random.default_rng(seed)
    courses = list(
        catalogue_selectors.courses().filter(is_published=True, is_generic=False, price__gt=0).order_by("pk")
    )
    if not courses:
        raise CommandError("No published paid courses to buy: seed the demo first (manage.py seed_demo).")
    purchases = failed = 0
    assignments = CampaignAssignment.objects.filter(campaign=campaign).select_related("member", "coupon").order_by("pk")
    for assignment in assignments:
        p = assignment.probability_at_assignment
        p_window = 1 - (1 - p) ** (window / horizon) if p is not None else BASE_RATE * window / 30
        logit = _logit(p_window) + (lift if assignment.group == CampaignAssignment.Group.TREATMENT else 0.0)
        buys = rng.random() < 1 / (1 + math.exp(-logit))
        day = float(rng.uniform(0.5, window - 0.5))
        course_order = rng.permutation(len(courses))
        if not buys:
            continue
        when = min(as_of + timedelta(days=day), now - timedelta(minutes=1))
        owned = set(
            catalogue_selectors.enrollments().filter(member=assignment.member).values_list("course_id", flat=True)
        )
        course = next((courses[i] for i in course_order if courses[i].pk not in owned), None)
        if course is None:
            continue
        coupon_code = assignment.coupon.code if assignment.coupon_id else ""
        try:
            course_purchase(member=assignment.member, course=course, coupon_code=coupon_code, when=when)
            purchases += 1
        except exceptions.CouponError:
            course_purchase(member=assignment.member, course=course, when=when)
            purchases += 1
        except exceptions.PaymentFailed:
            failed += 1
        except exceptions.MembersError:
            continue
    campaign_track_conversions(campaign=campaign, when=now)
    campaign_set_status(campaign=campaign, status=Campaign.Status.FINISHED)
    return SimulationOutcome(campaign=campaign, result=campaign_results(campaign), purchases=purchases,
                             failed_payments=failed)


def format_result(result: CampaignResult) -> str:
    t, c = result.treatment, result.control
    lines = [
        f"treatment n={t.n} conversions={t.conversions} rate={(t.rate or 0):.3f} revenue={t.revenue}",
        f"control   n={c.n} conversions={c.conversions} rate={(c.rate or 0):.3f} revenue={c.revenue}",
    ]
    if result.uplift is not None:
        lines.append(f"uplift {result.uplift * 100:+.1f} pp, 95% CI [{result.ci_low * 100:+.1f}, {result.ci_high * 100:+.1f}] pp"
                     f" ({result.ci_method}); Wald [{result.wald_low * 100:+.1f}, {result.wald_high * 100:+.1f}] pp")
    lines.append(f"coupons issued {result.coupons_issued}, redeemed {result.coupons_redeemed}, "
                 f"discounts {result.discount_given}, incremental revenue (net) {result.incremental_revenue}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create a campaign assigned as of a past date, simulate member responses, and print the measured result."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="", help="Campaign name (default: a dated one).")
        parser.add_argument("--days-ago", type=int, default=45, help="When the simulated campaign started, in days before today.")
        parser.add_argument("--window", type=int, default=30, help="Days after the start in which conversions count.")
        parser.add_argument("--holdout", type=Decimal, default=Decimal("0.2"), help="Share of the audience held out as control.")
        parser.add_argument("--percent-off", type=Decimal, default=Decimal(20), help="Coupon discount in percent.")
        parser.add_argument("--min-churn-risk", type=float, default=0.5, help="Lowest churn risk (0..1) in the audience.")
        parser.add_argument("--audience", default=Campaign.Audience.AT_RISK, choices=Campaign.Audience.values,
                            help="Who the campaign targets.")
        parser.add_argument("--seed", type=int, default=7, help="Random seed of the simulated responses.")
        parser.add_argument("--lift", type=float, default=COUPON_LOGIT_LIFT, help="coupon effect in logits")

    def handle(self, *args: object, **options: object) -> None:
        outcome = simulate_campaign(
            name=str(options["name"]), days_ago=int(options["days_ago"]), window=int(options["window"]),  # type: ignore[call-overload]
            holdout=options["holdout"], percent_off=options["percent_off"],  # type: ignore[arg-type]
            min_churn_risk=float(options["min_churn_risk"]), audience=str(options["audience"]),  # type: ignore[arg-type]
            seed=int(options["seed"]), lift=float(options["lift"]),  # type: ignore[call-overload,arg-type]
        )
        if outcome.result.treatment.n == 0:
            raise CommandError("The audience was empty. The at-risk audience needs propensity scores: run the nightly "
                               "pipeline first, or pass --audience lapsed_buyers.")
        self.stdout.write(f"campaign #{outcome.campaign.pk} {outcome.campaign.name}: {outcome.purchases} simulated "
                          f"purchases, {outcome.failed_payments} declined")
        self.stdout.write(format_result(outcome.result))
