from __future__ import annotations

from django.urls import path

from analytics import views_acting

app_name = "acting"

urlpatterns = [
    path("renew/<str:token>/", views_acting.renew_link, name="renew"),
]
