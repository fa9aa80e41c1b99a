"""Fixtures for the whole suite. pytest finds fixtures only in conftest
files and plugins, so the helper modules' fixtures are named here."""

import os

# A pytest-xdist worker starts with COLUMNS=80 in its environment. evroam's
# console takes $COLUMNS as the operator's chosen width (cli_common), so its
# tables would be cut at 80 under -n where a plain run keeps them whole.
# This runs before any test module imports evroam.cli_common.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

from tests.nodes import cluster  # noqa: F401

import evroam.modules  # noqa: F401  (registers every module, as a node does)
