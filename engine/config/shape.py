"""Check a document against the JSON Schema of its kind and explain each error to a consultant."""

from __future__ import annotations

from functools import lru_cache

import fastjsonschema
import jsonschema

from engine.config.schema import IDENTIFIER, KINDS, schema_for
from engine.config.yamlsource import SourceDoc
from engine.errors import Problem, did_you_mean

_TYPE_WORDS = {"string": "a text", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "array": "a list", "object": "a map", "null": "empty"}


@lru_cache(maxsize=None)
def _validator(kind: str):
    return jsonschema.Draft7Validator(schema_for(kind))


@lru_cache(maxsize=None)
def _fast_check(kind: str):
    # fastjsonschema compiles the schema to Python and answers "valid?" ~10x faster; only a
    # file that fails it is walked again by jsonschema, whose errors carry full paths
    return fastjsonschema.compile(schema_for(kind))


def check_shape(source: SourceDoc, kind: str) -> list[Problem]:
    """Return one problem per schema violation in `source`, positioned at the culprit."""
    data = source.data
    key = KINDS[kind][0]
    if not isinstance(data, dict):
        return [source.problem((), "schema-type",
                               f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} file must be a map starting with '{key}:'")]
    try:
        _fast_check(kind)(data)
        return []
    except fastjsonschema.JsonSchemaException:
        pass
    problems = []
    for error in _validator(kind).iter_errors(data):
        problems.extend(_explain(source, error))
    return problems


def _name(path) -> str:
    keys = [str(p) for p in path if not isinstance(p, int)]
    if not keys:
        return "the document"
    if path and isinstance(path[-1], int):
        return f"item {path[-1] + 1} of '{keys[-1]}'"
    return f"'{keys[-1]}'"


def _type_of(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if value is None:
        return "empty"
    return _TYPE_WORDS.get(type(value).__name__, "a text" if isinstance(value, str) else
                           "a list" if isinstance(value, list) else "a map")


def _explain(source: SourceDoc, error) -> list[Problem]:
    path = tuple(error.absolute_path)
    schema = error.schema
    validator = error.validator
    if validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in schema.get("properties", {})]
        return [source.problem(path + (k,), "unknown-key",
                               f"unknown key '{k}'{did_you_mean(k, allowed)}", key=True)
                for k in extras]
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        where = f" in {_name(path)}" if path else ""
        if "then" in error.schema_path and isinstance(error.instance, dict):
            # a key a report needs because of its kind (reports are the only if/then schema)
            kind = error.instance.get("kind")
            where += f" (a report of kind {kind} needs it)" if isinstance(kind, str) else \
                " (a report without 'kind' groups records and needs it)"
        return [source.problem(path, "missing-key", f"missing required key '{missing}'{where}",
                               key=True)]
    if validator == "type":
        wanted = error.validator_value
        wanted = [wanted] if isinstance(wanted, str) else wanted
        words = " or ".join(_TYPE_WORDS[w] for w in wanted)
        return [source.problem(path, "wrong-type",
                               f"{_name(path)} must be {words}, not {_type_of(error.instance)}")]
    if validator == "enum":
        options = ", ".join(str(v) for v in error.validator_value)
        hint = did_you_mean(error.instance, [str(v) for v in error.validator_value])
        return [source.problem(path, "bad-value",
                               f"{_name(path)} must be one of {options}; "
                               f"got '{error.instance}'{hint}")]
    if validator == "pattern":
        if "propertyNames" in error.schema_path:  # a map key: point at the key itself
            path, key = path + (error.instance,), True
        else:
            key = False
        if error.validator_value == IDENTIFIER:
            return [source.problem(path, "bad-identifier",
                                   f"'{error.instance}' is not a valid identifier: use lower-case "
                                   "letters, digits and '_', starting with a letter "
                                   "(at most 63 characters)", key=key)]
        return [source.problem(path, "bad-value",
                               f"{_name(path)}: '{error.instance}' does not have the expected "
                               f"form ({error.validator_value})")]
    if validator in ("anyOf", "oneOf"):
        branch = _likely_branch(error)
        if branch is not None:  # explain against the one form the author evidently meant
            found = []
            for sub in jsonschema.Draft7Validator(branch).iter_errors(error.instance):
                sub.path.extendleft(reversed(path))
                found.extend(_explain(source, sub))
            if found:
                return found
        return [source.problem(path, "wrong-type", _explain_any_of(path, error))]
    if validator in ("minProperties", "minItems", "minLength"):
        return [source.problem(path, "empty-value", f"{_name(path)} must not be empty")]
    if validator == "maxProperties":
        return [source.problem(path, "bad-value", f"{_name(path)} takes exactly one key")]
    return [source.problem(path, "bad-value", f"{_name(path)}: {error.message}")]


def _likely_branch(error) -> dict | None:
    """Return the only alternative whose type and required keys fit the value, if one does."""
    instance = error.instance
    fitting = []
    for branch in error.validator_value:
        kind = branch.get("type")
        if kind == "object" and not isinstance(instance, dict):
            continue
        if kind == "string" and not isinstance(instance, str):
            continue
        if kind is None and "enum" in branch and not isinstance(instance, str):
            continue
        if isinstance(instance, dict) and kind != "object":
            continue
        if isinstance(instance, dict) and not all(k in instance for k in branch.get("required", ())):
            continue
        fitting.append(branch)
    return fitting[0] if len(fitting) == 1 else None


def _explain_any_of(path, error) -> str:
    description = error.schema.get("description")
    instance = error.instance
    if isinstance(instance, dict):
        # the closest branch is the one whose unknown/missing keys explain the most
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None and best.validator == "additionalProperties":
            extras = [k for k in instance if k not in best.schema.get("properties", {})]
            allowed = [k for sub in error.schema.get("anyOf", [])
                       for k in sub.get("properties", {})]
            if extras:
                return (f"unknown key '{extras[0]}' in {_name(path)}"
                        f"{did_you_mean(extras[0], allowed)}")
    if description:
        got = f"got '{instance}'" if isinstance(instance, str) else f"not {_type_of(instance)}"
        return f"{_name(path)} must be {description}; {got}"
    return f"{_name(path)} has an unexpected value"
