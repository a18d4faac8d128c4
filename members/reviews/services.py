"""Writes for course reviews: submit, mark helpful, hide."""
from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.tracking import record_event
from members import exceptions
from members.models import (
    Course,
    Enrollment,
    Review,
    ReviewHelpful,
    User,
)
from members.privacy.services import audit_record


class ReviewNotAllowed(exceptions.MembersError):
    code = "review_not_allowed"
    default_message = _("Only members enrolled in this course can review it.")


class InvalidRating(exceptions.MembersError):
    code = "invalid_rating"
    default_message = _("A rating is a whole number from 1 to 5.")


def review_submit(*, member: User, course: Course, rating: int, body: str = "", when: datetime | None = None) -> Review:
    """Create or edit the member's review of a course. Only enrolled members may review."""
    when = when or timezone.now()
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise InvalidRating() from None
    if not 1 <= rating <= 5:
        raise InvalidRating()
    if not Enrollment.objects.filter(member=member, course=course).exists():
        raise ReviewNotAllowed()
    body = (body or "").strip()
    try:
        # The savepoint lets a losing concurrent INSERT fail without poisoning an outer transaction.
        with transaction.atomic():
            review = Review.objects.create(
                member=member, course=course, rating=rating, body=body, created_at=when, updated_at=when
            )
        created = True
    except IntegrityError:
        # Two submits raced (double click, two tabs): the unique constraint let exactly one INSERT through, and
        # this one becomes an edit of that row.
        Review.objects.filter(member=member, course=course).update(rating=rating, body=body, updated_at=when)
        review = Review.objects.get(member=member, course=course)
        created = False
    record_event(
        member=member, kind="course_reviewed" if created else "course_review_updated", obj=course, occurred_at=when,
        properties={"rating": rating, "review_id": review.pk, "has_text": bool(body)},
    )
    return review


def review_mark_helpful(*, review: Review, member: User) -> bool:
    """Mark a review helpful (once per member; not one's own). Returns whether a new mark was added."""
    if review.member_id == member.pk:
        raise exceptions.MembersError(_("You cannot mark your own review as helpful."))
    try:
        with transaction.atomic():
            ReviewHelpful.objects.create(review=review, member=member)
            # Incremented in SQL so concurrent marks from different members never lose an update.
            Review.objects.filter(pk=review.pk).update(helpful_count=F("helpful_count") + 1)
    except IntegrityError:
        return False
    record_event(member=member, kind="review_marked_helpful", obj=review, properties={"course_id": review.course_id})
    return True


def review_hide(*, review: Review, actor: User, hidden: bool = True) -> Review:
    """Staff hide (or show again) a review. Hidden reviews drop out of averages and lists."""
    with transaction.atomic():
        Review.objects.filter(pk=review.pk).update(is_hidden=hidden)
        audit_record(actor=actor, action="review_hidden" if hidden else "review_shown", target_member_id=review.member_id,
                     details={"review_id": review.pk, "course_id": review.course_id})
    review.is_hidden = hidden
    return review
