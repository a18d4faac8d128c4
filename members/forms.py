"""Forms for the learner's site. They validate input; the services do the writing."""
from __future__ import annotations

import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from members.models import BillingPeriod, Course, Language, Subscription, User

PAYMENT_CHOICES = [
    ("local:ok", _("Test card (succeeds)")),
    ("local:decline", _("Test card (declines)")),
]

SORT_CHOICES = [
    ("newest", _("Newest")),
    ("popular", _("Most popular")),
    ("rating", _("Top rated")),
    ("price", _("Price: low to high")),
    ("-price", _("Price: high to low")),
    ("title", _("Title")),
]

_COMMON_TIME_ZONES = ["UTC", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Asia/Tokyo",
                      "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Australia/Sydney"]


class SiteForm(forms.Form):
    """Labels without the trailing colon: the stylesheet puts each label on its own line above the field."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def time_zone_choices() -> list[tuple[str, str]]:
    rest = sorted(zoneinfo.available_timezones() - set(_COMMON_TIME_ZONES))
    return [(tz, tz) for tz in _COMMON_TIME_ZONES + rest]


class SignupForm(SiteForm):
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    display_name = forms.CharField(label=_("Display name"), max_length=120,
                                   widget=forms.TextInput(attrs={"autocomplete": "nickname"}))
    password = forms.CharField(label=_("Password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=_("At least 8 characters, not only numbers."))
    preferred_language = forms.ChoiceField(label=_("Language"), choices=Language.choices, initial=Language.EN)
    # Unticked unless the visitor ticks it (no `initial`): marketing email is opt-in.
    marketing_opt_in = forms.BooleanField(
        label=_("Send me news, offers and renewal reminders by email"), required=False,
        help_text=_("Optional. You can turn this off at any time in your profile or from any email."),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email already exists. Log in instead."))
        return email

    def clean(self) -> dict:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            probe = User(email=cleaned.get("email", ""), display_name=cleaned.get("display_name", ""))
            try:
                password_validation.validate_password(password, probe)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class ProfileForm(SiteForm):
    display_name = forms.CharField(label=_("Display name"), max_length=120)
    preferred_language = forms.ChoiceField(label=_("Language"), choices=Language.choices)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)
    marketing_opt_in = forms.BooleanField(
        label=_("Send me news, offers and renewal reminders by email"), required=False
    )


class CatalogueForm(SiteForm):
    q = forms.CharField(label=_("Search"), required=False, max_length=100,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Search courses")}))
    topic = forms.ChoiceField(label=_("Topic"), required=False)
    level = forms.ChoiceField(label=_("Level"), required=False,
                              choices=[("", _("Any level")), *Course.Level.choices])
    price_min = forms.DecimalField(label=_("Min price"), required=False, min_value=Decimal(0), decimal_places=2)
    price_max = forms.DecimalField(label=_("Max price"), required=False, min_value=Decimal(0), decimal_places=2)
    included = forms.BooleanField(label=_("Included in my membership"), required=False)
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)

    def __init__(self, *args: object, topics: list[str] = (), **kwargs: object) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        # topics are (code, name in the active language) pairs, or bare codes.
        pairs = [(t, t) if isinstance(t, str) else t for t in topics]
        self.fields["topic"].choices = [("", _("All topics")), *pairs]


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class MoneyForm(SiteForm):
    """A form that moves money carries a one-time token, rendered as a hidden input when the page is drawn. Every
    submission of that page (a double click, a resubmitting proxy, the back button) sends the same token, so the
    service recognises it and returns the first result instead of charging again."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=255,
                                      initial=new_idempotency_key)


class CheckoutForm(MoneyForm):
    coupon = forms.CharField(label=_("Coupon code"), required=False, max_length=40,
                             widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}))
    payment_token = forms.ChoiceField(label=_("Payment method"), choices=PAYMENT_CHOICES, initial="local:ok")


PROVIDER_LABELS = {"alipay": _("Alipay"), "wechatpay": _("WeChat Pay"), "stripe": _("Card (Stripe)")}
PROVIDER_PREFIX = "provider:"


class CourseCheckoutForm(CheckoutForm):
    """The course checkout also offers every configured real provider ("provider:<name>"): the member pays at the
    provider and comes back to the order. With none configured the choices are the local test cards, as before."""

    def __init__(self, *args: Any, providers: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offered = [(f"{PROVIDER_PREFIX}{name}", PROVIDER_LABELS.get(name, name)) for name in providers or []]
        if offered:
            self.fields["payment_token"].choices = offered + PAYMENT_CHOICES
            self.fields["payment_token"].initial = offered[0][0]

    def chosen_provider(self) -> str:
        token = self.cleaned_data["payment_token"]
        return token.removeprefix(PROVIDER_PREFIX) if token.startswith(PROVIDER_PREFIX) else ""


class TierCheckoutForm(CheckoutForm):
    period = forms.ChoiceField(label=_("Billing period"), choices=BillingPeriod.choices, initial=BillingPeriod.MONTH,
                               widget=forms.RadioSelect)
    use_trial = forms.BooleanField(label=_("Start with the free trial"), required=False, initial=True)


class SwitchPeriodForm(MoneyForm):
    period = forms.ChoiceField(label=_("Billing period"), choices=BillingPeriod.choices)


class ChangeTierForm(MoneyForm):
    tier = forms.SlugField(label=_("Membership"))


class RenewForm(MoneyForm):
    payment_token = forms.ChoiceField(label=_("Payment method"), choices=PAYMENT_CHOICES, initial="local:ok")


class CancelForm(MoneyForm):
    # "Payment failed" is what dunning records; a member leaving by choice never picks it.
    REASONS = tuple((v, label) for v, label in Subscription.CancellationReason.choices if v != "payment")

    reason = forms.ChoiceField(label=_("Why are you leaving?"), choices=REASONS, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Anything else we should know? (optional)"), required=False, max_length=1000,
                           widget=forms.Textarea(attrs={"rows": 3}))
