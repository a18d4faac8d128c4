"""Outreach: the emails analytics sends (reminders, dunning, campaign offers, newsletters, the community digest) —
one send path (analytics/outreach/messaging.py), staff-editable copy, per-category unsubscribe and the suppression list."""
