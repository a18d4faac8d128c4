from __future__ import annotations

from django.urls import include, path

from members import views, views_billing

app_name = "members"

urlpatterns = [
    path("", views.home, name="home"),
    path("courses/", views.course_list, name="course_list"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    path("courses/<slug:slug>/lessons/<int:position>/", views.lesson_detail, name="lesson_detail"),
    path("orders/<int:pk>/", views.order_detail, name="order_detail"),
    path("membership/payment-method/", views_billing.payment_method, name="billing_payment_method"),
    path("", include("members.urls_levers")),  # issue 8: reviews, invitations (/r/<code>/), my data
]
