"""Analytics API routes: event ingestion, my recommendations, staff data (mounted under /api/v1/)."""
from __future__ import annotations

from django.urls import path

from analytics.api import views

app_name = "analytics-api"

urlpatterns = [
    path("events/batch/", views.EventBatchView.as_view(), name="event-batch"),
    path("me/recommendations/", views.RecommendationListView.as_view(), name="recommendation-list"),
    path("me/recommendations/feedback/", views.RecommendationFeedbackView.as_view(), name="recommendation-feedback"),
    path("staff/members/", views.StaffMemberListView.as_view(), name="staff-member-list"),
    path("staff/reports/overview/", views.StaffOverviewView.as_view(), name="staff-overview"),
    path("staff/reports/risk/", views.StaffRiskView.as_view(), name="staff-risk"),
    path("staff/reports/cohorts/", views.StaffCohortsView.as_view(), name="staff-cohorts"),
    path("staff/campaigns/", views.StaffCampaignListView.as_view(), name="staff-campaign-list"),
    path("staff/campaigns/<int:pk>/", views.StaffCampaignDetailView.as_view(), name="staff-campaign-detail"),
    path("staff/model-versions/", views.StaffModelVersionListView.as_view(), name="staff-model-version-list"),
    path("staff/job-runs/", views.StaffJobRunListView.as_view(), name="staff-job-run-list"),
    path("staff/jobs/trigger/", views.StaffJobTriggerView.as_view(), name="staff-job-trigger"),
]
