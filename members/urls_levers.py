"""URLs for reviews, invitations and "my data" (issue 8); included into members.urls (namespace "members")."""
from __future__ import annotations

from django.urls import path

from members import views_levers

urlpatterns = [
    path("courses/<slug:slug>/reviews/", views_levers.course_reviews, name="course_reviews"),
    path("reviews/<int:pk>/helpful/", views_levers.review_helpful, name="review_helpful"),
    path("r/<str:code>/", views_levers.referral_landing, name="referral_landing"),
    path("invite/", views_levers.invite, name="invite"),
    path("my-data/", views_levers.my_data, name="my_data"),
    path("my-data/download/", views_levers.my_data_download, name="my_data_download"),
    path("my-data/delete/", views_levers.my_data_delete, name="my_data_delete"),
]
