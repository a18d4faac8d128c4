"""Domain errors raised by community.services. Each carries a message fit to show the member."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class CommunityError(Exception):
    default_message = _("Something went wrong.")
    code = "error"

    def __init__(self, message: str | None = None) -> None:
        self.message = str(message or self.default_message)
        super().__init__(self.message)


class NotAllowed(CommunityError):
    code = "not_allowed"
    default_message = _("You can only change your own posts and comments.")


class AuthorDeleted(NotAllowed):
    code = "author_deleted"
    default_message = _("Its author deleted their account, so nobody can edit it.")


class StaffOnly(CommunityError):
    code = "staff_only"
    default_message = _("Only staff can do this.")


class InvalidTarget(CommunityError):
    code = "invalid_target"
    default_message = _("Choose exactly one post or comment.")


class CannotFollowSelf(CommunityError):
    code = "cannot_follow_self"
    default_message = _("You cannot follow yourself.")


class BodyTooLong(CommunityError):
    code = "body_too_long"
    default_message = _("That is too long. Shorten it and try again.")
