from django.apps import AppConfig


class MembersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members"
    verbose_name = "Members & catalogue"

    def ready(self) -> None:
        # The membership operations register how order_settle grants what they sold
        # (members.commerce.services.SETTLERS); a provider webhook may settle before anything else imported them.
        from members.subscriptions import services  # noqa: F401
