from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from community import selectors


def feed(request: HttpRequest) -> HttpResponse:
    return render(request, "community/feed.html", {"posts": selectors.post_list()[:30]})


def post_detail(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(selectors.post_list(), pk=pk)
    return render(request, "community/post_detail.html", {"post": post})
