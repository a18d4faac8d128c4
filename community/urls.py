from __future__ import annotations

from django.urls import path

from community import views

app_name = "community"

urlpatterns = [
    path("", views.feed, name="feed"),
    path("posts/<int:pk>/", views.post_detail, name="post_detail"),
]
