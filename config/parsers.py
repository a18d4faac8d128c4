"""The API's JSON parser, with a nesting limit (issue 13.10).

`json.loads` recurses once per level: a body of 100,000 "[" raised RecursionError (a 500) inside DRF's parser,
and a few hundred levels that did parse went on to recurse again in serializers, renderers and validators.
No endpoint takes anything deeper than a few levels (an event's properties, a data export's lists), so a body
nested deeper than MAX_JSON_DEPTH is refused with 400 before any view sees it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when containers nest deeper than `limit`. Iterative, so it cannot itself run out of stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (Mapping, list)))
    return False


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
              ) -> Any:
        message = f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(message) from None
        if json_depth_exceeds(data):
            raise ParseError(message)
        return data

