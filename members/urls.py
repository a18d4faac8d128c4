from __future__ import annotations

from django.urls import include, path

from members import views, views_billing, views_checkout

app_name = "members"

urlpatterns = [
    path("", views.home, name="home"),
    path("courses/", views.course_list, name="course_list"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    path("courses/<slug:slug>/lessons/<int:position>/", views.lesson_detail, name="lesson_detail"),
    path("courses/<slug:slug>/lessons/<int:position>/complete/", views.lesson_complete, name="lesson_complete"),
    path("checkout/course/<slug:slug>/", views_checkout.checkout_course, name="checkout_course"),
    path("checkout/membership/<slug:slug>/", views_checkout.checkout_tier, name="checkout_tier"),
    path("orders/", views_checkout.order_list, name="order_list"),
    path("orders/<int:pk>/", views_checkout.order_detail, name="order_detail"),
    path("membership/tiers/", views_checkout.tiers, name="tiers"),
    path("membership/", views_checkout.membership, name="membership"),
    path("membership/switch/", views_checkout.membership_switch, name="membership_switch"),
    path("membership/renew/", views_checkout.membership_renew, name="membership_renew"),
    path("membership/change-tier/", views_checkout.membership_change_tier, name="membership_change_tier"),
    path("membership/cancel/", views_checkout.membership_cancel, name="membership_cancel"),
    path("membership/reactivate/", views_checkout.membership_reactivate, name="membership_reactivate"),
    path("membership/payment-method/", views_billing.payment_method, name="billing_payment_method"),
    path("", include("members.urls_levers")),  # issue 8: reviews, invitations (/r/<code>/), my data
]
