"""Delivery outbox, its workers, scheduled pulls and lag tracking."""
