"""The CRM engine: YAML layers in, a compiled registry (and later tables, records, web) out.

This module names what `web/`, `cli.py` and the tests may use.
"""

from engine.check import build_registry, load_registry
from engine.config.layers import CONTENT_ROOT, available_packs, resolve_layers
from engine.config.schema import combined_schema
from engine.errors import ConfigError, Problem, RecordError
from engine.registry.model import Registry

__all__ = [
    "CONTENT_ROOT", "ConfigError", "Problem", "RecordError", "Registry", "available_packs",
    "build_registry", "combined_schema", "load_registry", "resolve_layers",
]
