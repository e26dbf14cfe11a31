"""Random and mutated YAML: the only outcome other than a registry is a ConfigError list."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import engine
from conftest import FIXTURE_ROOT, write_site

SEED_FILES = {
    "entities/visit.yaml": (FIXTURE_ROOT / "metadata/entities/opportunity.yaml").read_text(),
    "workflows/flow.yaml": (FIXTURE_ROOT / "metadata/workflows/opportunity_pipeline.yaml")
    .read_text().replace("workflow: opportunity_pipeline", "workflow: flow2")
    .replace("entity: opportunity", "entity: visit"),
    "reports/r.yaml": (FIXTURE_ROOT / "metadata/reports/win_rate_by_owner.yaml").read_text()
    .replace("report: win_rate_by_owner", "report: r2"),
    "roles.yaml": (FIXTURE_ROOT / "metadata/roles.yaml").read_text(),
}
SEED_FILES["entities/visit.yaml"] = "\n".join(
    line for line in SEED_FILES["entities/visit.yaml"].replace(
        "entity: opportunity\n", "entity: visit\n").splitlines()
    if not line.lstrip().startswith(("lines:", "total:"))) + "\n"

SETTINGS = settings(max_examples=int(os.environ.get("CRM_FUZZ_EXAMPLES", "60")), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _load(folder: Path):
    try:
        engine.load_registry(site=folder, root=FIXTURE_ROOT)
    except engine.ConfigError as exc:
        assert exc.problems, "a ConfigError must carry at least one problem"
        for problem in exc.problems:
            assert problem.line >= 1 and problem.column >= 1 and problem.code


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                         st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=20))
yaml_values = st.recursive(yaml_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.text(max_size=12), children, max_size=5)), max_leaves=20)


@SETTINGS
@given(text=st.text(max_size=400))
def test_random_text_as_an_entity_file(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("site")
    write_site(folder, {})
    (folder / "entities").mkdir()
    (folder / "entities" / "x.yaml").write_text(text, encoding="utf-8")
    _load(folder)


@SETTINGS
@given(data=yaml_values, kind=st.sampled_from(["entities", "workflows", "automations", "reports",
                                               "dashboards", "seed"]))
def test_random_structures_in_every_kind_of_file(tmp_path_factory, data, kind):
    import yaml
    folder = tmp_path_factory.mktemp("site")
    write_site(folder, {})
    (folder / kind).mkdir()
    (folder / kind / "x.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    _load(folder)


@SETTINGS
@given(file=st.sampled_from(sorted(SEED_FILES)), data=st.data())
def test_mutated_valid_files(tmp_path_factory, file, data):
    """Delete, duplicate or replace characters and lines of a valid file, then load it."""
    text = SEED_FILES[file]
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["drop_line", "dup_line", "swap_chars", "insert", "cut"]))
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == "drop_line":
            del lines[i]
        elif op == "dup_line":
            lines.insert(i, lines[i])
        elif op == "insert":
            pos = data.draw(st.integers(0, len(lines[i])))
            piece = data.draw(st.sampled_from(["{", "}", "[", ":", "'", '"', "- ", "&a ", "*a",
                                               " yes", "__", "..", "(", "!!str ", "\t"]))
            lines[i] = lines[i][:pos] + piece + lines[i][pos:]
        elif op == "swap_chars" and len(lines[i]) > 2:
            pos = data.draw(st.integers(0, len(lines[i]) - 2))
            s = lines[i]
            lines[i] = s[:pos] + s[pos + 1] + s[pos] + s[pos + 2:]
        elif op == "cut":
            lines = lines[:i]
    folder = tmp_path_factory.mktemp("site")
    files = dict(SEED_FILES)
    files[file] = "".join(lines)
    write_site(folder, {})
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    _load(folder)


def test_the_unmutated_seed_files_load(tmp_path):
    folder = write_site(tmp_path / "s", {})
    for name, content in SEED_FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    registry = engine.load_registry(site=folder, root=FIXTURE_ROOT)
    assert "visit" in registry.entities and "flow2" in registry.workflows


@SETTINGS
@given(data=yaml_values, kind=st.sampled_from(["entity", "workflow", "automation", "report",
                                               "dashboard", "roles", "app", "pack"]))
def test_fast_and_full_schema_checks_agree(data, kind):
    """The compiled fast check and jsonschema must agree, or a mistake could slip through."""
    import fastjsonschema
    from engine.config.shape import _fast_check, _validator
    for candidate in (data, {"entity": "a", "fields": data}, {"workflow": "w", "states": data}):
        try:
            _fast_check(kind)(candidate)
            fast_ok = True
        except fastjsonschema.JsonSchemaException:
            fast_ok = False
        assert fast_ok == _validator(kind).is_valid(candidate)
