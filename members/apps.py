from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_cache_table(sender, using="default", **kwargs):  # noqa: ANN001, ANN003
    """`migrate` creates the database cache table (settings.CACHES without REDIS_URL); a no-op for other caches."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class MembersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members"
    verbose_name = "Members & catalogue"

    def ready(self) -> None:
        # The membership operations register how order_settle grants what they sold
        # (members.commerce.services.SETTLERS); a provider webhook may settle before anything else imported them.
        from members.subscriptions import services  # noqa: F401
        post_migrate.connect(_create_cache_table, sender=self, dispatch_uid="members_create_cache_table")
        # Writes to members, community and recommendation runs make cached learner pages stale (issue 19).
        from members import pagecache

        pagecache.connect_signals()
