from __future__ import annotations

from django.urls import path

from analytics import views_learner

app_name = "recs"

urlpatterns = [
    path("row/", views_learner.row, name="row"),
    path("click/<int:course_id>/", views_learner.click, name="click"),
]
