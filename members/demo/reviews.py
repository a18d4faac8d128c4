"""Demo reviews and referrals (issue 8), layered on top of the seeded demo platform.

Reviews: about 60% of completed enrollments leave a rating; each course has a hidden "quality" so averages differ
between courses, and members who finished more rate a little higher. Referrals: some later members are attributed
to an earlier member's code, and the granting service then moves them along from the real order history (so the
refund-window and refunded-first-order rules act on the demo exactly as in production).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from analytics.tracking import record_event
from members.models import (
    Enrollment,
    Referral,
    ReferralProgram,
    Review,
    ReviewHelpful,
    User,
)
from members.referrals.services import referral_code_for, referral_grant_rewards

REVIEW_TEXTS = {
    5: ["Excellent, changed how I work.", "Clear, practical, worth every minute.", "讲得非常清楚，收获很大。"],
    4: ["Good course with useful exercises.", "Solid material, a few slow lessons.", "内容扎实，练习很有用。"],
    3: ["Fine, but I expected more depth.", "Some lessons are great, others thin.", "还可以，部分章节略浅。"],
    2: ["Too basic for me.", "Pacing felt off.", "节奏有点慢。"],
    1: ["Not what the description promised.", "与介绍不符。"],
}


@dataclass(frozen=True)
class ReviewsReferralsSeed:
    reviews: int
    helpful_marks: int
    referrals: int
    rewarded: int


def _rating(rng: random.Random, quality: float) -> int:
    return max(1, min(5, round(rng.gauss(quality, 0.9))))


@transaction.atomic
def seed_reviews_and_referrals(*, seed: int = 7, now: datetime | None = None, review_share: float = 0.6,
                referral_share: float = 0.05) -> ReviewsReferralsSeed:
    now = now or timezone.now()
    rng = random.Random(seed)
    if not ReferralProgram.objects.exists():
        ReferralProgram.objects.create(friend_percent_off=Decimal(20), reward_kind=ReferralProgram.RewardKind.PERCENT,
                                       reward_percent_off=Decimal(25), refund_window_days=14)
    completed = list(Enrollment.objects.filter(completed_at__isnull=False).values_list("member_id", "course_id", "completed_at"))
    quality = {cid: rng.uniform(2.8, 4.7) for cid in {c for _m, c, _w in completed}}
    reviews = []
    for member_id, course_id, completed_at in completed:
        if rng.random() > review_share:
            continue
        rating = _rating(rng, quality[course_id])
        body = rng.choice(REVIEW_TEXTS[rating]) if rng.random() < 0.7 else ""
        reviews.append(Review(member_id=member_id, course_id=course_id, rating=rating, body=body,
                              created_at=completed_at, updated_at=completed_at))
    Review.objects.bulk_create(reviews, ignore_conflicts=True, batch_size=2000)
    saved = list(Review.objects.filter(is_hidden=False).values_list("pk", "member_id", "course_id", "rating", "created_at"))
    for review_id, member_id, course_id, rating, created_at in saved:
        record_event(member=member_id, kind="course_reviewed", object_type="course", object_id=course_id,
                     occurred_at=created_at, properties={"rating": rating, "review_id": review_id, "has_text": True},
                     source="demo", on_commit=False, idempotency_key=f"demo-review:{review_id}")
    by_course: dict[int, list[int]] = {}
    for _r, member_id, course_id, _rt, _c in saved:
        by_course.setdefault(course_id, []).append(member_id)
    marks = []
    for review_id, author_id, course_id, rating, _c in saved:
        peers = [m for m in by_course[course_id] if m != author_id]
        for peer in rng.sample(peers, k=min(len(peers), rng.randint(0, 3 if rating >= 4 else 1))):
            marks.append(ReviewHelpful(review_id=review_id, member_id=peer))
    ReviewHelpful.objects.bulk_create(marks, ignore_conflicts=True, batch_size=2000)
    for review_id in {m.review_id for m in marks}:
        Review.objects.filter(pk=review_id).update(helpful_count=ReviewHelpful.objects.filter(review_id=review_id).count())

    members = list(User.objects.filter(is_staff=False, anonymized_at__isnull=True).order_by("date_joined").only("pk", "date_joined"))
    referred_ids = set(Referral.objects.values_list("referred_id", flat=True))
    referrals = []
    for position, member in enumerate(members[len(members) // 5:], start=len(members) // 5):
        if member.pk in referred_ids or rng.random() > referral_share:
            continue
        referrer = members[rng.randrange(position)]
        code = referral_code_for(member=referrer).code
        referrals.append(Referral(referrer_id=referrer.pk, referred_id=member.pk, code=code, created_at=member.date_joined))
    Referral.objects.bulk_create(referrals, ignore_conflicts=True)
    User.objects.filter(pk__in=[r.referred_id for r in referrals]).update(acquisition_source=User.AcquisitionSource.REFERRAL)
    # Give a handful of demo members their invite code up front, so the "Invite friends" page has one.
    for member in members[:20]:
        referral_code_for(member=member)
    grant = referral_grant_rewards(now=now)
    return ReviewsReferralsSeed(reviews=len(saved), helpful_marks=len(marks), referrals=len(referrals), rewarded=grant.rewarded)

