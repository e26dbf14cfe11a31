"""The installed engine's version, which the configuration fingerprint and the admin
console's Site page show."""

from __future__ import annotations

import importlib.metadata

DISTRIBUTION = "crm-engine"


def engine_version() -> str:
    """The installed engine's version ("-" when run from a checkout that is not installed)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "-"
