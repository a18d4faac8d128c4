"""Forgetting a member in analytics, for account deletion.

members reaches it through `analytics.tracking.member_forget`, the one analytics module other apps import. Deletion is the
one write members needs here: analytics owns these tables, so analytics decides how a member is removed from them
(derived rows deleted, the behavioural log kept for aggregate reports but stripped of its free-form payload).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from analytics.models import (
    CampaignAssignment,
    EngagementScore,
    Event,
    MessageLog,
    PropensityScore,
    RecommendationSet,
    SegmentAssignment,
)


@dataclass(frozen=True)
class ForgetResult:
    engagement_scores: int
    segment_assignments: int
    propensity_scores: int
    recommendations: int
    campaign_assignments: int
    events_blanked: int
    messages_blanked: int


@transaction.atomic
def member_forget(member_id: int) -> ForgetResult:
    """Delete the member's scores, segments, propensities, recommendations and campaign assignments; blank the
    properties of their events and the personal parts of their message log.

    Events stay (kind, time, object) so yesterday's revenue and retention reports do not change when someone
    leaves; they now point at the anonymised account. MessageLog rows stay for the exactly-once dedupe keys (a
    deleted member must not be re-sent anything), with subject, error and context cleared.
    """
    counts = {
        "engagement_scores": EngagementScore.objects.filter(member_id=member_id).delete()[0],
        "segment_assignments": SegmentAssignment.objects.filter(member_id=member_id).delete()[0],
        "propensity_scores": PropensityScore.objects.filter(member_id=member_id).delete()[0],
        "recommendations": RecommendationSet.objects.filter(member_id=member_id).delete()[0],
        "campaign_assignments": CampaignAssignment.objects.filter(member_id=member_id).delete()[0],
    }
    events = Event.objects.filter(member_id=member_id).exclude(properties={}).update(properties={})
    messages = MessageLog.objects.filter(member_id=member_id).update(subject="", error="", context={})
    return ForgetResult(events_blanked=events, messages_blanked=messages, **counts)
