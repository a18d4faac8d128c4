"""The members site's routes (namespace "members"), one block per domain package."""
from __future__ import annotations

from django.urls import path

from members.catalogue import views as catalogue_views
from members.commerce import views as commerce_views
from members.privacy import views as privacy_views
from members.referrals import views as referrals_views
from members.reviews import views as reviews_views
from members.subscriptions import views as subscriptions_views

app_name = "members"

urlpatterns = [
    # catalogue: home, courses (lesson pages: members/learning/urls.py, namespace learning)
    path("", catalogue_views.home, name="home"),
    path("courses/", catalogue_views.course_list, name="course_list"),
    path("courses/<slug:slug>/", catalogue_views.course_detail, name="course_detail"),
    # commerce: checkout and orders
    path("checkout/course/<slug:slug>/", commerce_views.checkout_course, name="checkout_course"),
    path("checkout/membership/<slug:slug>/", commerce_views.checkout_tier, name="checkout_tier"),
    path("orders/", commerce_views.order_list, name="order_list"),
    path("orders/<int:pk>/", commerce_views.order_detail, name="order_detail"),
    # subscriptions: tiers, membership, renewal, cancellation, payment method
    path("membership/tiers/", subscriptions_views.tiers, name="tiers"),
    path("membership/", subscriptions_views.membership, name="membership"),
    path("membership/switch/", subscriptions_views.membership_switch, name="membership_switch"),
    path("membership/renew/", subscriptions_views.membership_renew, name="membership_renew"),
    path("membership/change-tier/", subscriptions_views.membership_change_tier, name="membership_change_tier"),
    path("membership/cancel/", subscriptions_views.membership_cancel, name="membership_cancel"),
    path("membership/reactivate/", subscriptions_views.membership_reactivate, name="membership_reactivate"),
    path("membership/payment-method/", subscriptions_views.payment_method, name="billing_payment_method"),
    # reviews
    path("courses/<slug:slug>/reviews/", reviews_views.course_reviews, name="course_reviews"),
    path("reviews/<int:pk>/helpful/", reviews_views.review_helpful, name="review_helpful"),
    # referrals
    path("r/<str:code>/", referrals_views.referral_landing, name="referral_landing"),
    path("invite/", referrals_views.invite, name="invite"),
    # privacy: the member's own data
    path("my-data/", privacy_views.my_data, name="my_data"),
    path("my-data/download/", privacy_views.my_data_download, name="my_data_download"),
    path("my-data/delete/", privacy_views.my_data_delete, name="my_data_delete"),
]
