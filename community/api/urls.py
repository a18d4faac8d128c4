"""Community API routes (mounted under /api/v1/ by config/api.py)."""
from __future__ import annotations

from django.urls import path

from community.api import views

app_name = "community-api"

urlpatterns = [
    path("posts/", views.PostListView.as_view(), name="post-list"),
    path("posts/<int:pk>/", views.PostDetailView.as_view(), name="post-detail"),
    path("posts/<int:pk>/pin/", views.PostPinView.as_view(), name="post-pin"),
    path("posts/<int:pk>/hide/", views.PostHideView.as_view(), name="post-hide"),
    path("posts/<int:pk>/comments/", views.CommentCreateView.as_view(), name="comment-create"),
    path("posts/<int:pk>/reactions/", views.PostReactionView.as_view(), name="post-reaction"),
    path("comments/<int:pk>/", views.CommentDetailView.as_view(), name="comment-detail"),
    path("comments/<int:pk>/hide/", views.CommentHideView.as_view(), name="comment-hide"),
    path("comments/<int:pk>/reactions/", views.CommentReactionView.as_view(), name="comment-reaction"),
    path("members/<int:pk>/follow/", views.FollowView.as_view(), name="follow"),
    path("me/notifications/", views.NotificationListView.as_view(), name="notification-list"),
    path("me/notifications/read-all/", views.NotificationReadAllView.as_view(), name="notification-read-all"),
    path("me/notifications/<int:pk>/read/", views.NotificationReadView.as_view(), name="notification-read"),
]
