"""A member with history in every app, for the export / deletion / profile tests (issue 8)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from analytics.models import (
    Campaign,
    CampaignAssignment,
    EngagementScore,
    Event,
    MessageLog,
    ModelVersion,
    PropensityScore,
    RecommendationRun,
    SegmentAssignment,
    SegmentRun,
)
from community.models import Comment, Follow, Notification, Post, Reaction
from members.models import (
    Coupon,
    CouponRedemption,
    LessonProgress,
    PaymentMethod,
    ReferralProgram,
)
from members.referrals.services import referral_attach_on_signup, referral_code_for
from members.reviews.services import review_mark_helpful, review_submit
from tests.analytics.factories import recommendation_set
from tests.members.factories import (
    CouponFactory,
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    OrderFactory,
    SubscriptionFactory,
    UserFactory,
)


def build_history(member, *, size: int = 1, other=None):
    """Give `member` `size` rows of every kind of history; returns the other member involved."""
    now = timezone.now()
    other = other or UserFactory()
    ReferralProgram.objects.get_or_create(name="Invite a friend")
    referral_attach_on_signup(member=member, code=referral_code_for(member=other).code)
    friend = UserFactory()
    referral_attach_on_signup(member=friend, code=referral_code_for(member=member).code)
    SubscriptionFactory(member=member, cancellation_note=f"notes by {member.display_name}")
    PaymentMethod.objects.create(member=member, token="tok_secret", label="Test card ending 4242")
    version = ModelVersion.objects.create(as_of=now, horizon_days=30, algorithm="logreg")
    seg_run = SegmentRun.objects.create(as_of=now, k=3)
    rec_run = RecommendationRun.objects.create(as_of=now, is_current=True)
    campaign = Campaign.objects.create(name="Win-back")
    CampaignAssignment.objects.create(campaign=campaign, member=member, group="treatment")
    recommended = []
    for i in range(size):
        course = CourseFactory(topic=["data", "design", "writing"][i % 3])
        lesson = LessonFactory(course=course)
        EnrollmentFactory(member=member, course=course, completed_at=now if i % 2 else None)
        LessonProgress.objects.create(member=member, lesson=lesson, completed_at=now)
        coupon = CouponFactory(assigned_member=member, description=f"for {member.email}")
        order = OrderFactory(member=member, course=course, coupon=coupon, paid_at=now - timedelta(days=i + 1),
                             amount_paid=Decimal("100.00") + i)
        CouponRedemption.objects.create(coupon=coupon, member=member, order=order)
        review = review_submit(member=member, course=course, rating=1 + i % 5, body=f"I am {member.display_name}")
        EnrollmentFactory(member=other, course=course)
        others_review = review_submit(member=other, course=course, rating=4)
        review_mark_helpful(review=others_review, member=member)
        review_mark_helpful(review=review, member=other)
        post = Post.objects.create(author=member, title=f"Hi from {member.display_name}", body="hello", body_html="<p>hello</p>")
        Comment.objects.create(post=post, author=other, body="welcome")
        Comment.objects.create(post=Post.objects.create(author=other, title="t", body="b"), author=member, body=f"{member.email}")
        Reaction.objects.create(member=member, post=post)
        Notification.objects.create(recipient=other, actor=member, verb="commented", text=f"{member.display_name} commented")
        Notification.objects.create(recipient=member, actor=other, verb="replied", text="Someone replied")
        EngagementScore.objects.create(member=member, as_of=now - timedelta(days=i), score=50 + i)
        SegmentAssignment.objects.create(run=seg_run if i == 0 else SegmentRun.objects.create(as_of=now, k=3),
                                         member=member, as_of=now - timedelta(days=i), cluster=1, label="engaged")
        PropensityScore.objects.create(member=member, model_version=version, as_of=now - timedelta(days=i),
                                       probability=0.4, top_reasons=[{"feature": "recency", "direction": "down"}])
        recommended.append((course, 0.5, "popular"))
        MessageLog.objects.create(member=member, kind="other", dedupe_key=f"test:{member.pk}:{i}",
                                  subject=f"Hello {member.display_name}", context={"email": member.email})
        for kind in ("lesson_viewed", "recommendation_impression", "recommendation_click"):
            Event.objects.create(member=member, kind=kind, occurred_at=now - timedelta(hours=i * 5),
                                 properties={"email": member.email, "course_id": course.pk})
    recommendation_set(run=rec_run, member=member, items=recommended)
    if not Follow.objects.filter(follower=member, followed=other).exists():
        Follow.objects.create(follower=member, followed=other)
    return other


def unused_coupon_count(member) -> int:
    return Coupon.objects.filter(assigned_member=member, is_active=True).count()
