"""The REST API's single router and its URL list (mounted at /api/v1/ in config/urls.py).

Each app contributes its viewsets and plain views from <app>/api/urls.py; this module only assembles them.
"""
from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("members.api.urls")),
    path("", include("community.api.urls")),
    path("", include("analytics.api.urls")),
]
