"""Print the demo logins (`make run` calls this after seeding)."""
from __future__ import annotations

from typing import Any

from config.commands import BaseCommand
from members.demo.generator import (
    LEARNER_EMAIL,
    LEARNER_PASSWORD,
    STAFF_EMAIL,
    STAFF_PASSWORD,
)
from members.models import User


class Command(BaseCommand):
    help = "Print the demo staff and learner logins."

    def handle(self, *args: Any, **options: Any) -> None:
        present = set(User.objects.filter(email__in=[STAFF_EMAIL, LEARNER_EMAIL]).values_list("email", flat=True))
        if not present:
            self.stdout.write("No demo logins in this database (run `manage.py seed_demo`).")
            return
        self.stdout.write("Demo logins:")
        if STAFF_EMAIL in present:
            self.stdout.write(f"  staff:   {STAFF_EMAIL} / {STAFF_PASSWORD}   (admin and staff reports)")
        if LEARNER_EMAIL in present:
            self.stdout.write(f"  learner: {LEARNER_EMAIL} / {LEARNER_PASSWORD}")
