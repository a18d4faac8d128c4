from __future__ import annotations

from analytics.outreach.reminders import dunning_emails_send, reminders_send
from config.commands import BaseCommand


class Command(BaseCommand):
    help = "Queue due renewal reminders and dunning emails now (what the beat schedule does daily/hourly)."

    def handle(self, *args: object, **options: object) -> None:
        reminders = reminders_send()
        dunning = dunning_emails_send()
        self.stdout.write(f"reminders: queued {reminders.queued}, already sent {reminders.already_sent}, "
                          f"requeued {reminders.requeued}; dunning: queued {dunning.queued}, "
                          f"already sent {dunning.already_sent}")
