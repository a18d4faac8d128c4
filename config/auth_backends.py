"""django-axes as the first authentication backend, tolerant of internal callers.

Every door a person types a password into (the HTML login, the admin login, the API token endpoint) passes the
request to authenticate(), and axes counts failures per client IP and per account name in the database (shared by
every process). Internal code that checks a password without a request (a management command, a test) is not a
login attempt from a client: this backend then steps aside instead of raising, and ModelBackend answers.
"""
from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class LoginLimitBackend(AxesStandaloneBackend):
    def authenticate(self, request: Any = None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
