"""Notifier worker: signed webhook delivery for verdicts and control events."""
