"""Email for learners: order receipts (text + HTML, in the member's language) and signed unsubscribe links."""
from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext as _

from members.models import User

UNSUBSCRIBE_SALT = "members.unsubscribe"
# Email categories a member can leave one by one -> the User flag that holds the choice. "offers" is the historical
# marketing_opt_in (campaign coupons); a link without a category (older emails, receipts) means "offers".
EMAIL_CATEGORIES = {
    "reminders": "reminders_opt_in",
    "offers": "marketing_opt_in",
    "community_digest": "digest_opt_in",
    "newsletter": "newsletter_opt_in",
}


def unsubscribe_token(*, member: User, category: str = "offers") -> str:
    # Signed, not stored: the link works from any email without a login, and nobody can forge one for another member.
    if category not in EMAIL_CATEGORIES:
        raise ValueError(f"unknown email category {category!r}")
    return signing.dumps({"m": member.pk, "c": category}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[User, str] | None:
    """(member, category) from a link, or None when the signature is wrong or the member is gone."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    category = data.get("c", "offers")
    member = User.objects.filter(pk=data.get("m")).first()
    if member is None or category not in EMAIL_CATEGORIES:
        return None
    return member, category


def email_category_labels() -> dict[str, str]:
    return {"reminders": _("renewal reminders"), "offers": _("offers and coupons"),
            "community_digest": _("the weekly community digest"), "newsletter": _("the newsletter")}


def member_from_unsubscribe_token(token: str) -> User | None:
    found = unsubscribe_token_read(token)
    return found[0] if found else None


def unsubscribe_url(*, member: User, category: str = "offers") -> str:
    token = unsubscribe_token(member=member, category=category)
    return settings.SITE_URL.rstrip("/") + reverse("unsubscribe", kwargs={"token": token})
