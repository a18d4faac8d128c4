from __future__ import annotations

from django.urls import path

from analytics.reports import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("cohorts/", views.cohort_view, name="cohorts"),
    path("repurchase/", views.repurchase_view, name="repurchase"),
    path("churn/", views.churn_view, name="churn"),
    path("models/", views.model_card_view, name="models"),
    path("segments/", views.segments_view, name="segments"),
    path("campaigns/", views.campaigns_view, name="campaigns"),
    path("revenue/", views.revenue_view, name="revenue"),
]
