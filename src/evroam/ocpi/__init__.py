"""The OCPI protocol as plain data types: models, enums, envelope, headers,
pagination. A flat, pure package: it imports nothing of evroam outside
itself (an import-linter contract in pyproject.toml holds it to that)."""
