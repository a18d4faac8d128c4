"""Email for learners: order receipts (text + HTML, in the member's language) and signed unsubscribe links."""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from members.models import User

UNSUBSCRIBE_SALT = "members.unsubscribe"


def unsubscribe_token(*, member: User) -> str:
    # Signed, not stored: the link works from any email without a login, and nobody can forge one for another member.
    return signing.dumps({"m": member.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def member_from_unsubscribe_token(token: str) -> User | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=data.get("m")).first()


def unsubscribe_url(*, member: User) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("unsubscribe", kwargs={"token": unsubscribe_token(member=member)})
