"""Recommendations as learners see them, for every door (the home page row and GET /api/v1/me/recommendations/).

Cards come from the member's current RecommendationRun, minus courses the member already owns; with none, the most
popular published courses the member does not own stand in, labelled as such. Reasons are rendered here, at display
time, in the viewer's language, from the stored reason code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.models import RecommendationSet, recommended_courses
from members.catalogue import selectors as catalogue_selectors
from members.commerce import selectors as commerce_selectors

# Reason codes written by analytics/ml/recommendations.py, translated here (the stored reason_text is English).
REASON_WITH_COURSE = {
    "because_you_finished": gettext_lazy("Because you finished “%(course)s”"),
    "similar_to_purchase": gettext_lazy("Similar to “%(course)s”, which you have"),
    "rated_highly_also_liked": gettext_lazy("Members who rated “%(course)s” highly also liked this"),
    "buy_again": gettext_lazy("You bought “%(course)s” before: buy it again"),
}


@dataclass(frozen=True)
class StoredRecommendation:
    """A course of the member's current RecommendationSet with its objects: `reason_course` is None when the
    reason names no course or a course deleted since."""
    run_id: int
    set_id: int
    rank: int
    course: Any  # members.models.Course
    score: float
    reason: str
    reason_course: Any  # members.models.Course or None


@dataclass(frozen=True)
class RecommendationCard:
    course: Any
    rank: int
    reason: str
    source: str  # "model" or "popular"
    run_id: int | None = None
    recommendation: StoredRecommendation | None = None


def current_recommendations(*, member_id: int, published_only: bool = False,
                            exclude: set[int] | frozenset[int] = frozenset()) -> list[StoredRecommendation]:
    """The member's recommendations of the current run, best first (stored rank kept), in two queries: the set, then
    its courses and the courses its reasons name. Courses deleted since the run are left out."""
    stored = (RecommendationSet.objects.filter(member_id=member_id, run__is_current=True)
              .values_list("pk", "run_id", "items").first())
    if stored is None:
        return []
    set_id, run_id, items = stored
    entries = [entry for entry in recommended_courses(items) if entry.course_id not in exclude]
    wanted = {entry.course_id for entry in entries} | {entry.reason_course_id for entry in entries
                                                      if entry.reason_course_id is not None}
    courses = catalogue_selectors.courses().in_bulk(wanted) if wanted else {}
    return [StoredRecommendation(run_id=run_id, set_id=set_id, rank=entry.rank, course=courses[entry.course_id],
                                 score=entry.score, reason=entry.reason,
                                 reason_course=courses.get(entry.reason_course_id))
            for entry in entries if entry.course_id in courses
            and (courses[entry.course_id].is_published or not published_only)]


def recommendation_cards(*, member: object, limit: int) -> list[RecommendationCard]:
    owned: set[int] = set()
    if getattr(member, "is_authenticated", False):
        owned = commerce_selectors.owned_course_ids(member=member)
        recs = current_recommendations(member_id=member.pk, published_only=True, exclude=owned)[:limit]
        if recs:
            cards = []
            for position, rec in enumerate(recs, start=1):
                if rec.reason_course is not None and rec.reason in REASON_WITH_COURSE:
                    reason = REASON_WITH_COURSE[rec.reason] % {"course": rec.reason_course.title}
                elif rec.reason_course is not None:
                    reason = _("Because you finished “%(course)s”") % {"course": rec.reason_course.title}
                else:
                    # Popularity is the platform's, not "members like you": say so.
                    reason = _("Popular on the platform")
                cards.append(RecommendationCard(course=rec.course, rank=position, reason=reason, source="model",
                                                run_id=rec.run_id, recommendation=rec))
            return cards
    popular = (
        catalogue_selectors.with_popularity(catalogue_selectors.course_list().exclude(pk__in=owned))
        .order_by("-popularity", "-published_at", "title")[:limit]
    )
    # The fallback for a member with no run (no history yet): the most enrolled courses, labelled as exactly that.
    return [RecommendationCard(course=course, rank=position, reason=_("Popular on the platform"),
                               source="popular") for position, course in enumerate(popular, start=1)]


