from django.urls import path

from members.commerce.providers import views

app_name = "payments"
urlpatterns = [path("webhooks/<slug:provider>/", views.webhook, name="webhook")]
