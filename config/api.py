"""The REST API's URL list (mounted at /api/v1/ in config/urls.py).

Each app contributes its views from <app>/api/urls.py; this module only assembles them, plus /health/, the
trivial endpoint load benchmarks use as the server's ceiling.
"""
from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


@extend_schema(
    tags=["health"], summary="Liveness: answers without touching the database",
    responses={200: inline_serializer("Health", {"status": serializers.CharField()})},
    examples=[OpenApiExample("OK", value={"status": "ok"}, response_only=True)],
)
class HealthView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


urlpatterns = [
    path("health/", HealthView.as_view(), name="api-health"),
    path("", include("members.api.urls")),
    path("", include("community.api.urls")),
    path("", include("analytics.api.urls")),
]
