"""Members API routes: the catalogue and /me/ (mounted under /api/v1/ by config/api.py)."""
from __future__ import annotations

from django.urls import path

from members.api import views
from members.learning.api import CourseScheduleView, LessonPositionView

app_name = "members-api"

urlpatterns = [
    path("courses/", views.CourseListView.as_view(), name="course-list"),
    path("courses/<slug:slug>/", views.CourseDetailView.as_view(), name="course-detail"),
    path("courses/<slug:slug>/purchase/", views.CoursePurchaseView.as_view(), name="course-purchase"),
    path("tiers/", views.TierListView.as_view(), name="tier-list"),
    path("me/profile/", views.ProfileView.as_view(), name="profile"),
    path("me/tokens/", views.TokenView.as_view(), name="tokens"),
    path("me/membership/", views.MembershipView.as_view(), name="membership"),
    path("me/membership/switch-period/", views.MembershipSwitchPeriodView.as_view(), name="membership-switch"),
    path("me/membership/change-tier/", views.MembershipChangeTierView.as_view(), name="membership-change-tier"),
    path("me/membership/renew/", views.MembershipRenewView.as_view(), name="membership-renew"),
    path("me/membership/cancel/", views.MembershipCancelView.as_view(), name="membership-cancel"),
    path("me/membership/reactivate/", views.MembershipReactivateView.as_view(), name="membership-reactivate"),
    path("me/orders/", views.OrderListView.as_view(), name="order-list"),
    path("me/orders/<int:pk>/", views.OrderDetailView.as_view(), name="order-detail"),
    path("me/coupons/", views.CouponListView.as_view(), name="coupon-list"),
    path("me/quote/", views.QuoteView.as_view(), name="quote"),
    path("me/enrollments/", views.EnrollmentListView.as_view(), name="enrollment-list"),
    path("me/courses/<slug:slug>/lessons/", CourseScheduleView.as_view(), name="course-schedule"),  # drip, media, quiz
    path("me/lessons/<int:pk>/complete/", views.LessonCompleteView.as_view(), name="lesson-complete"),
    path("me/lessons/<int:pk>/view/", views.LessonViewView.as_view(), name="lesson-view"),
    path("me/lessons/<int:pk>/position/", LessonPositionView.as_view(), name="lesson-position"),
    path("me/payment-method/", views.PaymentMethodView.as_view(), name="payment-method"),
    path("me/membership/offer/", views.RetentionOfferView.as_view(), name="membership-offer"),
    path("me/referral/", views.ReferralView.as_view(), name="referral"),
    path("me/export/", views.MemberExportView.as_view(), name="export"),
    path("courses/<slug:slug>/reviews/", views.CourseReviewsView.as_view(), name="course-reviews"),
    path("reviews/<int:pk>/helpful/", views.ReviewHelpfulView.as_view(), name="review-helpful"),
]
