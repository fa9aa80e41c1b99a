"""Versions: no Receiver interface; what we serve is in sender.py."""

router = None
