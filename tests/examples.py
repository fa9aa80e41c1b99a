"""The spec's example objects (in ../shared beside the checkout), for tests
that check our models and pricing against them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EXAMPLES = SHARED / "ocpi-examples"


def spec_examples_dir(release: str = "2.2.1") -> Path:
    """The spec's example objects, or a skip that says why they are missing."""
    path = EXAMPLES / release
    if not path.is_dir():
        pytest.skip(f"spec examples not found at {path} (they live in ../shared beside the checkout)")
    return path


def load_example(name: str, release: str = "2.2.1") -> object:
    return json.loads((spec_examples_dir(release) / name).read_text())
