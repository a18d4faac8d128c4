"""Refuse text no page can use before any view sees it (issue 13.10): a NUL character or a lone surrogate in the
path, a query-string key or value, or a form field.

PostgreSQL refuses NUL in text ("A string literal cannot contain NUL (0x00) characters", a ValueError → 500 on any
page whose filter reached a query), and no UTF-8 response can echo a lone surrogate. One check here instead of one
per view: HTML requests get the 400 page, /api/ requests the API's error body. JSON bodies are left to the API
(config.parsers limits nesting; serializers reject such strings per field, and the event batch per event, so one
bad event does not reject its batch).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict

from config.storable_text import text_problem

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _problem_in(where: str, params: QueryDict) -> str:
    for key, values in params.lists():
        for text, what in ((key, f"{where} key"), *((value, f"{where} field '{key}'") for value in values)):
            problem = text_problem(text) if isinstance(text, str) else ""
            if problem:
                return f"The {what} {problem}."
    return ""


def request_text_problem(request: HttpRequest) -> str:
    checks: Iterable[tuple[str, Callable[[], str]]] = (
        ("path", lambda: text_problem(request.path_info) and f"The address {text_problem(request.path_info)}."),
        ("query", lambda: _problem_in("query", request.GET)),
        ("form", lambda: _problem_in("form", request.POST)
         if request.method == "POST" and request.content_type in FORM_TYPES else ""),
    )
    for _name, check in checks:
        problem = check()
        if problem:
            return problem
    return ""


class RejectUnusableTextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = request_text_problem(request)
        if problem:
            if request.path_info.startswith("/api/"):
                from config.api_errors import error_body

                return JsonResponse(error_body("invalid", problem), status=400)
            raise BadRequest(problem)
        return self.get_response(request)
