"""Where lesson media and attachments live: outside MEDIA_ROOT's public URL space.

Course covers and other public uploads may be served straight from MEDIA_ROOT (by the web server or, in debug, by
Django). Paid lesson files must not be: a guessed /media/... URL would skip the entitlement check. They live under
settings.PRIVATE_MEDIA_ROOT and are only ever sent by members.learning.views after the check. (Here, not in members.learning,
because members.models names it and members.learning imports members.models.)
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property


@deconstructible
class PrivateMediaStorage(FileSystemStorage):
    def __init__(self) -> None:
        super().__init__(base_url=None)

    @cached_property
    def base_location(self) -> str:
        return str(getattr(settings, "PRIVATE_MEDIA_ROOT", Path(settings.MEDIA_ROOT).parent / "private-media"))

    def _clear_cached_properties(self, setting: str, **kwargs: object) -> None:
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "PRIVATE_MEDIA_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def url(self, name: str | None) -> str:  # never a public address
        raise ValueError("Private lesson files have no public URL; link to the learning views instead.")


@cache
def private_media_storage() -> PrivateMediaStorage:
    return PrivateMediaStorage()
