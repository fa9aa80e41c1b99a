"""Inbound HTTP: one router per module interface."""
