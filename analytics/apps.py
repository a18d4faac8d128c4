from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Message kinds whose context lives outside messaging.py register their builders on import.
        from analytics.outreach import digest, newsletter  # noqa: F401
