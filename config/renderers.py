"""The API's JSON renderer: an answer that echoes a client's lone surrogate still renders (issue 13.10).

DRF renders with ensure_ascii=False and then encodes to UTF-8, which cannot hold a lone surrogate: a 400 whose
message quotes the bad input ('"\\ud800" is not a valid choice.') became a UnicodeEncodeError and a 500. Such a
response is rendered again with ASCII escapes ("\\ud800"), which is valid JSON every client reads.
"""
from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer


class SurrogateSafeJSONRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            ascii_renderer = JSONRenderer()
            ascii_renderer.ensure_ascii = True
            return ascii_renderer.render(data, accepted_media_type, renderer_context)
