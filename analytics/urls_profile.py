from __future__ import annotations

from django.urls import path

from analytics import views_profile

app_name = "profile"

urlpatterns = [
    path("<int:member_id>/", views_profile.profile, name="member"),
    path("referrals/", views_profile.referrals, name="referrals"),
]
