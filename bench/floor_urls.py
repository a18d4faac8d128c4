"""config.urls plus /bench/floor/: the signed-in member's name as plain text, through every middleware."""
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user.name if request.user.is_authenticated else "anonymous",
                        content_type="text/plain; charset=utf-8")


urlpatterns = [path("bench/floor/", floor), *project_urlpatterns]
