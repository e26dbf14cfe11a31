"""Module boundaries: the engine imports no Flask; runtime code imports no yaml/jsonschema."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME_MODULES = ["engine.registry.model", "engine.registry.fieldtypes", "engine.expr",
                   "engine.expr.tree", "engine.errors"]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    return set(out.split())


def test_engine_imports_no_flask():
    loaded = _loaded_after_import("engine")
    assert not {m for m in loaded if m == "flask" or m.startswith("flask.")}


def test_runtime_modules_import_no_yaml_or_jsonschema():
    for module in RUNTIME_MODULES:
        loaded = _loaded_after_import(module)
        leaked = {m for m in loaded if m.split(".")[0] in ("yaml", "jsonschema", "_yaml")}
        assert not leaked, f"{module} imports {sorted(leaked)}"


def test_registry_objects_are_frozen(tmp_path):
    import dataclasses

    import pytest

    import engine
    registry = engine.load_registry(pack="manufacturing")
    entity = registry.entities["customer"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entity.name = "x"
    with pytest.raises(TypeError):
        entity.fields["x"] = None
    with pytest.raises(TypeError):
        registry.entities["x"] = entity
    assert isinstance(entity.list_columns, tuple)
