from __future__ import annotations

from django.urls import path

from analytics.recommendations import views

app_name = "recs"

urlpatterns = [
    path("row/", views.row, name="row"),
    path("click/<int:course_id>/", views.click, name="click"),
]
