"""config.content_security: django-csp's header, built once for plain responses, as django-csp builds it."""
from __future__ import annotations

from csp.constants import HEADER, NONCE
from csp.decorators import csp_update
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from config.content_security import CSPMiddleware


def _through(middleware_class, view):
    request = RequestFactory().get("/somewhere/")
    middleware = middleware_class(view)
    middleware.process_request(request)
    return middleware.process_response(request, view(request))


def plain(request):
    return HttpResponse("ok")


@csp_update({"img-src": ["https://images.example.com"]})
def updated(request):
    return HttpResponse("ok")


def test_a_plain_response_gets_the_same_header_as_from_django_csp():
    assert _through(CSPMiddleware, plain)[HEADER] == _through(DjangoCSPMiddleware, plain)[HEADER]


def test_a_view_with_its_own_policy_still_gets_it():
    header = _through(CSPMiddleware, updated)[HEADER]
    assert "https://images.example.com" in header and header == _through(DjangoCSPMiddleware, updated)[HEADER]


def test_a_changed_setting_is_seen_at_once():
    _through(CSPMiddleware, plain)
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        assert _through(CSPMiddleware, plain)[HEADER] == "default-src 'none'"
    assert _through(CSPMiddleware, plain)[HEADER] == _through(DjangoCSPMiddleware, plain)[HEADER]


def test_a_nonce_used_by_the_page_goes_through_django_csp():
    def with_nonce(request):
        return HttpResponse(str(request.csp_nonce))

    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"script-src": ["'self'", NONCE]}}):
        response = _through(CSPMiddleware, with_nonce)
    assert f"script-src 'self' 'nonce-{response.content.decode()}'" in response[HEADER]
