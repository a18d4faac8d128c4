from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from members.commerce.services import order_refund
from members.models import Coupon, Order, Referral, ReferralProgram
from members.referrals.services import (
    normalize_email,
    referral_attach_on_signup,
    referral_code_for,
    referral_grant_rewards,
)
from members.referrals.views import REFERRAL_COOKIE, attach_referral_after_signup, referral_code_from_request
from tests.members.factories import OrderFactory, UserFactory


@pytest.fixture
def program(db):
    return ReferralProgram.objects.create(
        friend_percent_off=Decimal(15), reward_kind=ReferralProgram.RewardKind.CREDIT, reward_amount=Decimal("50.00"),
        reward_percent_off=None, refund_window_days=14,
    )


def _reward_coupons(member) -> int:
    return Coupon.objects.filter(assigned_member=member, source=Coupon.Source.REFERRAL).count()


def test_normalize_email_collapses_gmail_aliases():
    assert normalize_email("A.Lice+promo@GoogleMail.com") == "alice@gmail.com"
    assert normalize_email("a.lice+x@example.com") == "a.lice@example.com"


@pytest.mark.django_db
def test_code_is_stable_per_member(alice):
    assert referral_code_for(member=alice).code == referral_code_for(member=alice).code


@pytest.mark.django_db
def test_normal_referral_grants_once_even_when_the_task_runs_twice(program, alice):
    code = referral_code_for(member=alice).code
    friend = UserFactory(email="friend@example.com")
    referral = referral_attach_on_signup(member=friend, code=code.lower())
    assert referral.status == Referral.Status.SIGNED_UP
    assert referral.welcome_coupon.assigned_member == friend
    assert referral.welcome_coupon.percent_off == Decimal(15)
    paid = timezone.now() - timedelta(days=3)
    OrderFactory(member=friend, paid_at=paid)
    # Inside the refund window: qualified, nothing granted yet.
    assert referral_grant_rewards(now=timezone.now()).rewarded == 0
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED and _reward_coupons(alice) == 0
    later = paid + timedelta(days=15)
    first = referral_grant_rewards(now=later)
    second = referral_grant_rewards(now=later)
    assert (first.rewarded, second.rewarded) == (1, 0)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REWARDED
    assert _reward_coupons(alice) == 1
    assert referral.reward_coupon.amount_off == Decimal("50.00")


@pytest.mark.django_db
def test_self_referral_grants_nothing(program, alice):
    code = referral_code_for(member=alice).code
    referral = referral_attach_on_signup(member=alice, code=code)
    assert referral.status == Referral.Status.REJECTED
    assert "own invitation" in referral.rejection_reason
    OrderFactory(member=alice, paid_at=timezone.now() - timedelta(days=40))
    referral_grant_rewards(now=timezone.now())
    assert _reward_coupons(alice) == 0


@pytest.mark.django_db
def test_duplicate_account_by_normalised_email_grants_nothing(program):
    referrer = UserFactory(email="jane.doe@gmail.com")
    code = referral_code_for(member=referrer).code
    sock = UserFactory(email="janedoe+friend@googlemail.com")
    referral = referral_attach_on_signup(member=sock, code=code)
    assert referral.status == Referral.Status.REJECTED
    assert referral.welcome_coupon is None
    assert "same email" in referral.rejection_reason
    OrderFactory(member=sock, paid_at=timezone.now() - timedelta(days=40))
    referral_grant_rewards(now=timezone.now())
    assert _reward_coupons(referrer) == 0 and _reward_coupons(sock) == 0


@pytest.mark.django_db
def test_second_account_of_an_existing_member_is_refused(program, alice):
    UserFactory(email="sam@example.com")
    code = referral_code_for(member=alice).code
    clone = UserFactory(email="Sam+2@example.com")
    referral = referral_attach_on_signup(member=clone, code=code)
    assert referral.status == Referral.Status.REJECTED
    assert "already exists" in referral.rejection_reason


@pytest.mark.django_db
def test_refunded_first_order_grants_nothing(program, alice):
    code = referral_code_for(member=alice).code
    friend = UserFactory()
    referral_attach_on_signup(member=friend, code=code)
    paid = timezone.now() - timedelta(days=30)
    order = OrderFactory(member=friend, paid_at=paid, provider_reference="ref")
    order_refund(order=order, when=paid + timedelta(days=2))
    # A later paid order does not rescue it: only the first paid order counts.
    OrderFactory(member=friend, paid_at=paid + timedelta(days=3))
    referral_grant_rewards(now=timezone.now())
    referral = Referral.objects.get(referred=friend)
    assert referral.status == Referral.Status.REJECTED
    assert "refunded" in referral.rejection_reason
    assert _reward_coupons(alice) == 0
    assert Order.objects.filter(member=friend, status=Order.Status.REFUNDED).count() == 1


@pytest.mark.django_db
def test_a_member_is_referred_once(program, alice, bob):
    friend = UserFactory()
    first = referral_attach_on_signup(member=friend, code=referral_code_for(member=alice).code)
    second = referral_attach_on_signup(member=friend, code=referral_code_for(member=bob).code)
    assert first.pk == second.pk and second.referrer == alice
    assert Referral.objects.filter(referred=friend).count() == 1


@pytest.mark.django_db
def test_unknown_code_or_no_programme_attaches_nothing(alice):
    friend = UserFactory()
    assert referral_attach_on_signup(member=friend, code=referral_code_for(member=alice).code) is None
    ReferralProgram.objects.create()
    assert referral_attach_on_signup(member=friend, code="NOPE1234") is None
    assert not Referral.objects.exists()


# ---- pages




@pytest.mark.django_db
def test_invite_link_sets_a_signed_cookie_the_signup_reads(client, program, alice, rf):
    code = referral_code_for(member=alice).code
    response = client.get(reverse("members:referral_landing", args=[code]))
    assert response.status_code == 302
    cookie = response.cookies[REFERRAL_COOKIE].value
    request = rf.get("/", HTTP_COOKIE=f"{REFERRAL_COOKIE}={cookie}")
    assert referral_code_from_request(request) == code
    forged = rf.get("/", HTTP_COOKIE=f"{REFERRAL_COOKIE}={code}")
    assert referral_code_from_request(forged) == ""
    friend = UserFactory()
    attach_referral_after_signup(request, friend)
    assert Referral.objects.get(referred=friend).referrer == alice


@pytest.mark.django_db
def test_invite_page_lists_invitations(alice_client, alice, program):
    friend = UserFactory(display_name="Friendly Fred")
    referral_attach_on_signup(member=friend, code=referral_code_for(member=alice).code)
    response = alice_client.get(reverse("members:invite"))
    assert response.status_code == 200
    assert b"Friendly Fred" in response.content and b"/r/" in response.content


@pytest.mark.django_db
def test_referral_report_compares_referred_and_other_buyers(staff_client, program, alice):
    from members.referrals.selectors import referral_report

    code = referral_code_for(member=alice).code
    friends = [UserFactory() for _ in range(3)]
    for friend in friends:
        referral_attach_on_signup(member=friend, code=code)
    referral_attach_on_signup(member=alice, code=code)  # refused
    now = timezone.now()
    OrderFactory(member=friends[0], paid_at=now - timedelta(days=30))
    OrderFactory(member=friends[0], paid_at=now - timedelta(days=2))
    OrderFactory(member=friends[1], paid_at=now - timedelta(days=30))
    for i in range(4):  # other buyers: one repeat out of four
        other = UserFactory()
        OrderFactory(member=other, paid_at=now)
        if i == 0:
            OrderFactory(member=other, paid_at=now)
    OrderFactory(member=alice, paid_at=now)  # alice's refused self-referral makes her an "other" buyer
    referral_grant_rewards(now=now)
    report = referral_report()
    assert (report.signups, report.rejected, report.converted, report.rewarded) == (3, 1, 2, 2)
    assert report.conversion_rate == 66.7
    assert (report.referred_buyers, report.referred_repeat_buyers, report.referred_repurchase_rate) == (2, 1, 50.0)
    assert (report.other_buyers, report.other_repeat_buyers, report.other_repurchase_rate) == (5, 1, 20.0)
    response = staff_client.get(reverse("profile:referrals"))
    assert response.status_code == 200 and b"66.7" in response.content


@pytest.mark.django_db
def test_signing_up_through_an_invite_link_attaches_the_referral(client, program, alice):
    code = referral_code_for(member=alice).code
    client.get(reverse("members:referral_landing", args=[code]))
    response = client.post(reverse("signup"), {"email": "newfriend@example.net", "display_name": "New Friend",
                                               "password": "a-long-pass-phrase", "preferred_language": "en"})
    assert response.status_code == 302
    referral = Referral.objects.get(referred__email="newfriend@example.net")
    assert referral.referrer == alice and referral.status == Referral.Status.SIGNED_UP
    assert referral.welcome_coupon.assigned_member == referral.referred
    assert referral.referred.acquisition_source == "referral"
