from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static as static_url
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from config import health
from config.api import urlpatterns as api_urlpatterns

admin.site.site_header = "Learning Club administration"
admin.site.site_title = "Learning Club admin"

urlpatterns = [
    # Browsers and feed readers ask for /favicon.ico at the root whatever the page says.
    # (resolved per request: the hashed name comes from the manifest, which exists only after collectstatic)
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static_url("icons/favicon.ico"))),
    path("health/", health.liveness, name="liveness"),
    path("ready/", health.readiness, name="readiness"),
    path("admin/", admin.site.urls),
    path("payments/", include("members.commerce.providers.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("members.accounts.urls")),
    path("community/", include("community.urls")),
    path("recommendations/", include("analytics.recommendations.urls", namespace="recs")),
    path("staff/members/", include("analytics.profiles.urls", namespace="profile")),
    path("staff/", include("analytics.reports.urls")),
    path("act/", include("analytics.outreach.renew_link")),
    path("hooks/", include("analytics.outreach.urls")),  # email bounce/complaint webhooks
    path("api/v1/", include(api_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script as a file of its own (?script), not inline: the CSP forbids inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("members.learning.urls")),  # rich lessons: media, downloads, quizzes, certificates
    path("", include("members.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
