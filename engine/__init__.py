"""The CRM engine: YAML layers in, a compiled registry (and from it tables, records, web) out.

This module names what `web/`, `cli.py` and the tests may use. The names are loaded on first
use, so that importing a runtime module (`engine.registry`, `engine.expr`...) never pulls in
the YAML loader and the schema checker.
"""

from importlib import import_module

_EXPORTS = {
    "build_registry": "engine.check", "load_registry": "engine.check",
    "CONTENT_ROOT": "engine.config.layers", "available_packs": "engine.config.layers",
    "resolve_layers": "engine.config.layers", "combined_schema": "engine.config.schema",
    "ConfigError": "engine.errors", "Problem": "engine.errors", "RecordError": "engine.errors",
    "Registry": "engine.registry.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
