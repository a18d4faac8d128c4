from __future__ import annotations

from django.urls import path

from analytics.outreach import views

app_name = "outreach"

urlpatterns = [
    path("email/<slug:provider>/", views.email_webhook, name="email_webhook"),
]
