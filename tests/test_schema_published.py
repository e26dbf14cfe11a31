"""The published JSON Schema accepts every valid file and rejects the invalid ones."""

from pathlib import Path

import jsonschema
import pytest

import engine
from engine.config.yamlsource import read_yaml
from conftest import FIXTURES

REPO = Path(__file__).resolve().parents[1]
VALIDATOR = jsonschema.Draft7Validator(engine.combined_schema())


def _yaml_files(*folders):
    for folder in folders:
        yield from sorted(p for p in Path(folder).rglob("*.yaml") if p.name != "expected.txt")


VALID = list(_yaml_files(REPO / "metadata", REPO / "industry_packs", FIXTURES / "root",
                         FIXTURES / "sites" / "analytics"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(REPO)))
def test_every_valid_file_validates(path):
    doc, problems = read_yaml(path, str(path))
    assert problems == []
    errors = list(VALIDATOR.iter_errors(doc.data))
    assert errors == [], [e.message for e in errors]


INVALID = {
    "entity with an unknown key": {"entity": "a", "feilds": {}},
    "field with an unknown type": {"entity": "a", "fields": {"x": {"type": "strin"}}},
    "enum option that YAML turned into a boolean": {
        "entity": "a", "fields": {"x": {"type": "enum", "options": ["a", True]}}},
    "workflow without transitions": {"workflow": "w", "entity": "a", "field": "s",
                                     "initial": "x", "states": {"x": {}}},
    "report with a bad chart": {"report": "r", "entity": "a", "measures": {"n": {"agg": "count"}},
                                "chart": "donut"},
    "report without measures or kind": {"report": "r", "entity": "a"},
    "measure over related records without the reference field": {
        "report": "r", "entity": "a", "measures": {"n": {"agg": "count", "of": "payment"}}},
    "report of an unknown kind": {"report": "r", "entity": "a", "kind": "cohort"},
    "rfm report without its date": {"report": "r", "entity": "a", "kind": "rfm",
                                    "customer": "c", "amount": "t"},
    "basket report with a support above 1": {"report": "r", "entity": "a", "kind": "basket",
                                             "lines": "l", "product": "p", "min_support": 2},
    "forecast report too far ahead": {"report": "r", "entity": "a", "kind": "forecast",
                                      "date": "d", "months": 100},
    "roles with a bad access value": {"roles": {"r": {"entities": {"a": {"read": "mine"}}}}},
    "automation with two actions in one step": {
        "automation": "x", "entity": "a", "when": {"event": "created"},
        "do": [{"transition": "t", "set": {"a": "1"}}]},
    "app with an unknown locale": {"app": "a", "locale": "fr"},
    "pack with a numeric version": {"pack": "p", "label": "P", "version": 1.0},
    "dashboard widget without report or metric": {"dashboard": "d", "widgets": [{"label": "x"}]},
    "bad identifier": {"entity": "Customer"},
    "not any kind of file": {"hello": "world"},
    "seed whose records are not maps": {"entity": "a", "records": [1, 2]},
}


@pytest.mark.parametrize("data", INVALID.values(), ids=INVALID.keys())
def test_invalid_documents_are_rejected(data):
    assert list(VALIDATOR.iter_errors(data)), "the schema accepted an invalid document"


def test_broken_fixture_files_with_shape_errors_are_rejected():
    broken = FIXTURES / "sites" / "broken"
    for name in ("app.yaml", "roles.yaml", "workflows/typo.yaml"):
        doc, _ = read_yaml(broken / name, name)
        assert list(VALIDATOR.iter_errors(doc.data)), name
