"""Cdrs module: Sender and Receiver routers (being written)."""

from __future__ import annotations

from fastapi import APIRouter

sender = APIRouter()
receiver = APIRouter()
