"""django-csp's middleware with the header of a plain response built once per process (issue 19).

django-csp rebuilds the policy from the settings on every response (a dataclass turned into dicts, every directive
joined again), about a tenth of a millisecond: a fifth of the time of a learner page served from the page cache.
When the view set no policy of its own (`@csp_update`, `@csp_replace`, `@csp_exempt`…) and nothing asked for a
nonce, the header depends on the settings alone: it is built once and kept until a setting changes. Any other
response goes through django-csp unchanged.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase

_PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
                 "_csp_exempt", "_csp_exempt_ro")
_built: dict[bool, str] = {}


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "DEBUG":
        _built.clear()


setting_changed.connect(_forget, dispatch_uid="config-content-security-forget")


def _policy(report_only: bool) -> str:
    if report_only not in _built:
        _built[report_only] = build_policy(**asdict(PolicyParts()), report_only=report_only)
    return _built[report_only]


class CSPMiddleware(_CSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if (getattr(request, "_csp_nonce", None) is not None or settings.DEBUG
                or any(hasattr(response, name) for name in _PER_RESPONSE)):
            return super().process_response(request, response)
        for header, report_only, setting in ((HEADER, False, "CONTENT_SECURITY_POLICY"),
                                             (HEADER_REPORT_ONLY, True, "CONTENT_SECURITY_POLICY_REPORT_ONLY")):
            policy = _policy(report_only)
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            if policy and header not in response and not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
