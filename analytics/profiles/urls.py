from __future__ import annotations

from django.urls import path

from analytics.profiles import views

app_name = "profile"

urlpatterns = [
    path("<int:member_id>/", views.profile, name="member"),
    path("referrals/", views.referrals, name="referrals"),
]
