from django.urls import path

from members.commerce import pay_links
from members.commerce import views as commerce_views
from members.commerce.providers import views

app_name = "payments"
urlpatterns = [
    path("webhooks/<slug:provider>/", views.webhook, name="webhook"),
    path("return/<int:pk>/", commerce_views.payment_return, name="return"),
    path("pay/<str:token>/", pay_links.pay_link, name="pay_link"),
]
