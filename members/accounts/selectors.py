"""Reads of member accounts for other apps (analytics outreach, profiles and exports read members through these, not
through members.models)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from members.models import User


def active_members() -> QuerySet[User]:
    """Accounts that can receive mail: active and not anonymised (account deletion blanks the row)."""
    return User.objects.filter(is_active=True, anonymized_at__isnull=True)


def newsletter_recipients() -> QuerySet[User]:
    return active_members().filter(newsletter_opt_in=True)


def digest_recipients() -> QuerySet[User]:
    return active_members().filter(digest_opt_in=True)


def members_by_id(member_ids: Iterable[int]) -> dict[int, User]:
    return User.objects.in_bulk(list(member_ids))


def member_get(*, member_id: int) -> User | None:
    return User.objects.filter(pk=member_id).first()


def member_external_ids() -> dict[int, str]:
    """pk → the platform's id, for members imported from another system (one query for all of them)."""
    return dict(User.objects.filter(external_id__isnull=False).values_list("pk", "external_id"))


AcquisitionSource = User.AcquisitionSource


def users() -> QuerySet[User]:
    """Every account, staff included, for other apps to filter and aggregate."""
    return User.objects.all()
