from tests.nodes import cluster  # noqa: F401
