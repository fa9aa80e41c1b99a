"""Chargingprofiles: owner-side rules beyond the generic ones (sync/own.py): none."""
