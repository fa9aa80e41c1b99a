"""Outbound OCPI calls."""
