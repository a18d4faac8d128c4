"""The API documentation pages load everything from our own static files (drf-spectacular-sidecar), no CDN."""
from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize("path", ["/api/redoc/", "/api/docs/"])
def test_api_docs_load_nothing_from_another_host(client, path):
    response = client.get(path)
    assert response.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', response.content.decode())
    # Our static files, or the page's own init script (Swagger's split view serves it from ?script=, so the CSP
    # needs no inline script): nothing from another host.
    assert urls and all(u.startswith(("/static/", f"{path}?script=")) for u in urls), urls


@pytest.mark.django_db
def test_favicon_and_app_icons_are_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("icons/favicon.ico")
    page = client.get("/").content.decode()
    assert 'rel="icon"' in page and 'rel="apple-touch-icon"' in page and 'rel="manifest"' in page
