from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Message kinds whose context lives outside messaging.py register their builders on import.
        # Tasks that services enqueue by name (to avoid importing their own door back) must be registered before
        # the first enqueue, also in processes where Celery's autodiscovery has not run (web, tests).
        from analytics.ingest import tasks as ingest_tasks  # noqa: F401
        from analytics.outreach import digest, newsletter  # noqa: F401
        from analytics.outreach import tasks as outreach_tasks  # noqa: F401
        from analytics.scoring import tasks as scoring_tasks  # noqa: F401
