from django.urls import path

from members.commerce import pay_links
from members.commerce.providers import views

app_name = "payments"
urlpatterns = [
    path("webhooks/<slug:provider>/", views.webhook, name="webhook"),
    path("pay/<str:token>/", pay_links.pay_link, name="pay_link"),
]
