from __future__ import annotations

from analytics.outreach.campaigns import campaigns_run_all
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Track conversions and assign today's members for every active campaign (what the beat schedule does)."

    def handle(self, *args: object, **options: object) -> None:
        s = campaigns_run_all()
        self.stdout.write(f"campaigns {s.campaigns}: assigned {s.assigned} (treatment {s.treatment}, control "
                          f"{s.control}), skipped {s.skipped}, conversions tracked {s.conversions}")
        if s.failed:
            self.stdout.write(f"failed and skipped: campaigns {', '.join(map(str, s.failed))} "
                              "(the reason is on each one's run_campaign job run)")
