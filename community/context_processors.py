from __future__ import annotations

from django.http import HttpRequest


def notifications(request: HttpRequest) -> dict[str, object]:
    """The unread count in the header. Lazy, so pages that don't render the header pay no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread_notifications": 0}

    from community.selectors import unread_notification_count

    class _Lazy:
        _value: int | None = None

        def __int__(self) -> int:
            if self._value is None:
                self._value = unread_notification_count(member=user)
            return self._value

        def __str__(self) -> str:
            return str(int(self))

        def __bool__(self) -> bool:
            return int(self) > 0

    return {"unread_notifications": _Lazy()}
