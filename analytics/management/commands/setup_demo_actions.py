"""Demo defaults for `make run`: reminder rules, one active at-risk campaign, and (with --simulate) one past
campaign whose measured uplift shows on its admin page right away. Idempotent: each piece only if missing."""
from __future__ import annotations

from decimal import Decimal

from django.core.management.base import CommandParser
from django.utils import timezone

from analytics.models import Campaign, PropensityScore, ReminderRule
from config.commands import BaseCommand

DEFAULT_RULES = [(days, period) for period in ("month", "year") for days in (14, 7, 1)]
ACTIVE_CAMPAIGN = "At-risk members: 20% off (daily)"
SIMULATED_PREFIX = "Simulated:"


class Command(BaseCommand):
    help = "Create default reminder rules and an active at-risk campaign if none exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--simulate", action="store_true",
                            help="also run simulate_campaign once (needs propensity scores) so results show at once")

    def handle(self, *args: object, **options: object) -> None:
        created_rules = 0
        if not ReminderRule.objects.exists():
            for days, period in DEFAULT_RULES:
                ReminderRule.objects.create(name=f"{days} days before renewal ({period}ly)", days_before=days,
                                            billing_period=period)
                created_rules += 1
        if not Campaign.objects.exclude(name__startswith=SIMULATED_PREFIX).exists():
            Campaign.objects.create(
                name=ACTIVE_CAMPAIGN, status=Campaign.Status.ACTIVE, audience=Campaign.Audience.AT_RISK,
                min_churn_risk=0.6, max_probability=0.4, percent_off=Decimal(20), applies_to="all",
                validity_days=14, holdout_share=Decimal("0.200"), starts_at=timezone.now(), daily_cap=200,
                cooldown_days=30, conversion_window_days=30,
            )
            self.stdout.write(f"created campaign '{ACTIVE_CAMPAIGN}'")
        self.stdout.write(f"reminder rules created: {created_rules}")
        if options["simulate"] and not Campaign.objects.filter(name__startswith=SIMULATED_PREFIX).exists():
            if not PropensityScore.objects.exists():
                self.stdout.write("no propensity scores yet: skipping the simulated campaign")
                return
            from analytics.management.commands.simulate_campaign import (
                format_result,
                simulate_campaign,
            )

            outcome = simulate_campaign()
            self.stdout.write(f"simulated campaign #{outcome.campaign.pk}:\n{format_result(outcome.result)}")
