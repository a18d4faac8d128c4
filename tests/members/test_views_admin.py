"""Admin polish: bulk single-use codes through an intermediate form, CSV export, recent events on the member page."""
from __future__ import annotations

import pytest
from django.urls import reverse

from analytics.tracking import record_event
from members.models import Coupon
from tests.members.factories import CouponFactory

pytestmark = pytest.mark.django_db


def test_generate_codes_shows_form_then_creates_unique_single_use_codes(staff_client):
    template = CouponFactory(code="TEMPLATE", percent_off=15)
    url = reverse("admin:members_coupon_changelist")
    form = staff_client.post(url, {"action": "generate_codes", "_selected_action": [template.pk]})
    assert form.status_code == 200 and b"How many codes" in form.content
    staff_client.post(url, {"action": "generate_codes", "_selected_action": [template.pk], "apply": "1",
                            "count": "25", "prefix": "gift", "valid_days": "10"})
    codes = Coupon.objects.filter(source=Coupon.Source.BULK)
    assert codes.count() == 25
    assert len(set(codes.values_list("code", flat=True))) == 25
    assert all(c.code.startswith("GIFT-") and c.max_redemptions == 1 and c.percent_off == 15 for c in codes)


def test_export_csv(staff_client):
    a, b = CouponFactory(code="AAA"), CouponFactory(code="BBB")
    response = staff_client.post(reverse("admin:members_coupon_changelist"),
                                 {"action": "export_coupons_csv", "_selected_action": [a.pk, b.pk]})
    lines = response.content.decode().strip().splitlines()
    assert response["Content-Type"].startswith("text/csv")
    assert lines[0].startswith("code,") and lines[1].startswith("AAA,") and lines[2].startswith("BBB,")


def test_member_page_shows_recent_events(staff_client, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record_event(member=alice, kind="lesson_completed", properties={"course_id": 7})
    response = staff_client.get(reverse("admin:members_user_change", args=[alice.pk]))
    assert response.status_code == 200
    assert b"lesson_completed" in response.content and b"Last 20 events" in response.content


def test_non_staff_cannot_use_admin(client, alice):
    client.force_login(alice)
    assert client.get(reverse("admin:members_coupon_changelist")).status_code == 302


def test_a_coupon_typed_in_the_admin_is_saved_by_the_coupon_service(admin_client, monkeypatch):
    from members import admin as members_admin
    from members.commerce import services as commerce_services
    saved = []

    def spy(*, coupon):
        saved.append(coupon.code)
        return commerce_services.coupon_save(coupon=coupon)

    monkeypatch.setattr(members_admin, "coupon_save", spy)
    response = admin_client.post(reverse("admin:members_coupon_add"), {
        "code": "SPRING", "description": "", "discount_type": "percent", "percent_off": "20", "amount_off": "",
        "currency": "CNY", "applies_to": "all", "valid_from_0": "2026-01-01", "valid_from_1": "00:00:00",
        "valid_until_0": "", "valid_until_1": "", "max_redemptions": "", "max_per_member": "1",
        "source": "manual", "is_active": "on", "created_at_0": "2026-01-01", "created_at_1": "00:00:00",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert saved == ["SPRING"]
    coupon = Coupon.objects.get(code="SPRING")
    assert coupon.times_redeemed == 0 and coupon.source == Coupon.Source.MANUAL


@pytest.mark.parametrize("model", ["order", "paymentmethod"])
def test_the_admin_reads_orders_and_payment_methods_but_never_writes_them(admin_client, model):
    from tests.members.factories import OrderFactory
    order = OrderFactory()
    assert admin_client.get(reverse(f"admin:members_{model}_add")).status_code == 403
    if model == "order":
        page = admin_client.get(reverse("admin:members_order_change", args=[order.pk]))
        assert page.status_code == 200 and b'name="_save"' not in page.content
        before = order.amount_paid
        admin_client.post(reverse("admin:members_order_change", args=[order.pk]), {"amount_paid": "0.00"})
        order.refresh_from_db()
        assert order.amount_paid == before
