from __future__ import annotations

from django.urls import path

from community import views

app_name = "community"

urlpatterns = [
    path("", views.feed, name="feed"),
    path("posts/new/", views.post_create, name="post_create"),
    path("posts/<int:pk>/", views.post_detail, name="post_detail"),
    path("posts/<int:pk>/edit/", views.post_edit, name="post_edit"),
    path("posts/<int:pk>/delete/", views.post_delete, name="post_delete"),
    path("posts/<int:pk>/comment/", views.comment_create, name="comment_create"),
    path("posts/<int:pk>/react/", views.post_react, name="post_react"),
    path("posts/<int:pk>/pin/", views.post_pin, name="post_pin"),
    path("posts/<int:pk>/hide/", views.post_hide, name="post_hide"),
    path("comments/<int:pk>/edit/", views.comment_edit, name="comment_edit"),
    path("comments/<int:pk>/delete/", views.comment_delete, name="comment_delete"),
    path("comments/<int:pk>/hide/", views.comment_hide, name="comment_hide"),
    path("members/<int:pk>/follow/", views.follow, name="follow"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification_read"),
    path("notifications/read-all/", views.notifications_read_all, name="notifications_read_all"),
]
