"""Strings PostgreSQL refuses to store, found before they reach the database.

PostgreSQL text and jsonb cannot hold a NUL character (U+0000), and no UTF-8 text can hold a lone surrogate
(U+D800–U+DFFF, which JSON can spell as "\\ud800"): psycopg raises on encoding and the statement fails — for a
COPY or a multi-row INSERT, the whole batch. SQLite stores both, so a test suite on SQLite never notices. Every door
that takes member or client text checks with these functions and names the bad value (issue 13.9/13.10): the event
batch API per event, the platform importer per line and column, and config.middleware for query strings and form
fields.
"""
from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str:
    """Why this string cannot be stored ("" when it can)."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return ""
    char = match.group()
    if char == "\x00":
        return f"contains a NUL character (U+0000) at position {match.start()}, which cannot be stored"
    return f"contains a lone surrogate (U+{ord(char):04X}) at position {match.start()}, which is not valid Unicode"


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (key or value) anywhere in a JSON-like value that cannot be stored: (path, reason).

    The path reads like the JSON it came from, e.g. "tags[2]" or "device.name". Walks with an explicit stack, so a
    deeply nested value cannot exhaust Python's recursion limit.
    """
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return where, problem
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                key_text = str(key)
                child_path = f"{where}.{key_text}" if where else key_text
                problem = text_problem(key_text)
                if problem:
                    return child_path, f"key {problem}"
                stack.append((child_path, child))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None
