"""Domain errors raised by members.services. Each carries a message fit to show the member."""
from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class MembersError(Exception):
    default_message = _("Something went wrong.")
    code = "error"

    def __init__(self, message: str | None = None) -> None:
        self.message = str(message or self.default_message)
        super().__init__(self.message)


class CouponError(MembersError):
    code = "coupon_invalid"
    default_message = _("This coupon cannot be used.")


class CouponNotFound(CouponError):
    code = "coupon_not_found"
    default_message = _("There is no coupon with this code.")


class CouponExpired(CouponError):
    code = "coupon_expired"
    default_message = _("This coupon has expired.")


class CouponNotYetValid(CouponError):
    code = "coupon_not_yet_valid"
    default_message = _("This coupon is not valid yet.")


class CouponUsedUp(CouponError):
    code = "coupon_used_up"
    default_message = _("This coupon has been used up.")


class CouponAlreadyUsed(CouponError):
    code = "coupon_already_used"
    default_message = _("You have already used this coupon.")


class CouponNotApplicable(CouponError):
    code = "coupon_not_applicable"
    default_message = _("This coupon does not apply to this item.")


class CouponNotYours(CouponError):
    code = "coupon_not_yours"
    default_message = _("This coupon belongs to another member.")


class PaymentFailed(MembersError):
    """Carries the provider's reason. It is stored in English on the Order; the member reads it in their language
    when we know the text (the local provider's, marked with gettext_noop), else as the provider wrote it."""

    code = "payment_failed"
    default_message = _("The payment was declined.")

    def __init__(self, message: str | None = None) -> None:
        super().__init__(gettext(message) if message else None)


class AlreadyOwned(MembersError):
    code = "already_owned"
    default_message = _("You already have access to this course.")


class SubscriptionError(MembersError):
    code = "subscription_invalid"
    default_message = _("This membership change is not possible.")


class AlreadySubscribed(SubscriptionError):
    code = "already_subscribed"
    default_message = _("You already have a live membership.")


class LessonLocked(MembersError):
    code = "lesson_locked"
    default_message = _("Buy the course or join a tier that includes it to open this lesson.")


class IncludedInMembership(MembersError):
    code = "included_in_membership"
    default_message = _("This course is included in your membership: open it, there is nothing to pay.")


class IdempotencyConflict(MembersError):
    """The same idempotency key was sent with a different request (Stripe answers this with an error too)."""

    code = "idempotency_conflict"
    default_message = _("This request key was already used for a different request. Send a new key.")


class RequestInProgress(MembersError):
    code = "request_in_progress"
    default_message = _("The same request is still being processed. Wait a moment and look at your orders.")


class PaymentInProgress(MembersError):
    code = "payment_in_progress"
    default_message = _("A payment for this is already in progress.")


class OfferAlreadyAccepted(SubscriptionError):
    code = "offer_already_accepted"
    default_message = _("You have already accepted an offer for this billing period.")


class AlreadyRenewed(SubscriptionError):
    code = "already_renewed"
    default_message = _("Your next period is already paid for.")
# Rich lessons (members/learning/)


class LessonNotOpenYet(LessonLocked):
    """A dripped lesson before its date. The message names the date in the member's language."""

    code = "lesson_not_open_yet"
    default_message = _("This lesson is not open yet.")


class QuizInvalid(MembersError):
    code = "quiz_invalid"
    default_message = _("Answer every question with one of its choices.")


class CertificateNotEarned(MembersError):
    code = "certificate_not_earned"
    default_message = _("Finish every lesson and pass every quiz to earn the certificate.")
