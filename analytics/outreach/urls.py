from __future__ import annotations

from django.urls import path

from analytics.outreach import views

app_name = "acting"

urlpatterns = [
    path("renew/<str:token>/", views.renew_link, name="renew"),
]
