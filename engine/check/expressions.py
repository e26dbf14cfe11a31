"""Compile and check expressions at load time: syntax, names, functions and types.

CEL has no type checker in the bound library, so each expression is evaluated once against
typed sample values (DSL §4): a double mixed with an int, an unknown field behind a reference,
or a condition that does not give true/false is reported at the expression's line.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from engine.check.context import CheckRun, Spot
from engine.errors import did_you_mean
from engine.expr import (CEL_FUNCTIONS, ENGINE_FUNCTIONS, Expression, ExpressionSyntaxError,
                         parse, unknown_functions)
from engine.expr.tree import Call, Name, TreeSyntaxError, parse_tree
from engine.registry.fieldtypes import SAMPLE_DATETIME
from engine.registry.model import Entity, Field

USER_SAMPLE = {"id": 1, "username": "sample", "display_name": "Sample", "email": "s@example.com",
               "roles": ["admin"], "locale": "en"}
_FIRST_SENTENCE = re.compile(r"^(.*?\.)(\s|$)")


def sample_value(field: Field, entities: Mapping[str, Entity], depth: int = 0):
    """Return a typed sample of `field`'s value as CEL sees it."""
    kind = field.kind.name
    if kind in ("string", "text", "email", "phone", "url", "autonumber"):
        return "sample"
    if kind == "integer":
        return 1
    if kind in ("decimal", "money", "percent", "rollup"):
        return 1.0
    if kind == "boolean":
        return True
    if kind in ("date", "datetime"):
        return SAMPLE_DATETIME
    if kind == "enum":
        return field.options[0].value if field.options else "option"
    if kind == "multi_enum":
        return [field.options[0].value] if field.options else []
    if kind == "reference":
        if field.to == "user":
            return dict(USER_SAMPLE) if depth == 0 else {"id": 1}
        target = entities.get(field.to or "")
        if target is None or depth > 0:
            return {"id": 1}
        return record_sample(target, entities, depth + 1)
    if kind == "file":  # its metadata (engine/records/uploads.py)
        return {"name": "sample.pdf", "size": 1, "content_type": "application/pdf",
                "sha256": "0" * 64}
    if kind == "lines":
        child = entities.get(field.child_entity or "")
        return [record_sample(child, entities, depth + 1)] if child and depth == 0 else []
    return {}


def record_sample(entity: Entity, entities: Mapping[str, Entity], depth: int = 0) -> dict:
    """Return a sample record of `entity`: system fields and every active field."""
    user = dict(USER_SAMPLE) if depth == 0 else {"id": 1}
    sample: dict[str, Any] = {"id": 1, "version": 1, "created_at": SAMPLE_DATETIME,
                              "updated_at": SAMPLE_DATETIME, "created_by": user,
                              "updated_by": user, "owner": user}
    for name, field in entity.fields.items():
        sample[name] = sample_value(field, entities, depth)
    return sample


def record_scope(entity: Entity, entities: Mapping[str, Entity]) -> dict:
    """Return the names an expression about one record of `entity` may use."""
    scope = record_sample(entity, entities)
    scope["user"] = dict(USER_SAMPLE)
    return scope


def literal_source(value) -> str:
    """Turn a YAML scalar given where an expression is expected into CEL text."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def compile_expression(run: CheckRun, spot: Spot, value, scope: Mapping[str, Any], *,
                       what: str, want_bool: bool = False):
    """Compile and check one expression; return (Expression, sample result) or (None, None)."""
    source = value if isinstance(value, str) else literal_source(value)
    try:
        program = parse(source)
    except ExpressionSyntaxError as exc:
        run.error_at(spot, exc.line, exc.column, "expr-syntax",
                     f"{what}: expression does not parse: {exc}")
        return None, None

    ok = True
    bound = _macro_variables(source)  # `l` in lines.exists(l, l.quantity > 5)
    names = [n for n in program.variables() if n not in bound]
    for name in names:
        if name not in scope:
            line, column = _find(source, name)
            known = [n for n in scope if n != "user"] + (["user"] if "user" in scope else [])
            run.error_at(spot, line, column, "expr-unknown-name",
                         f"{what}: unknown name '{name}'{did_you_mean(name, known)}")
            ok = False
    for name in unknown_functions(program):
        line, column = _find(source, name)
        run.error_at(spot, line, column, "expr-unknown-function",
                     f"{what}: unknown function '{name}'"
                     f"{did_you_mean(name, list(ENGINE_FUNCTIONS) + sorted(CEL_FUNCTIONS))}")
        ok = False
    if not ok:
        return None, None

    expression = Expression(source=source, where=spot.where, names=frozenset(names),
                            program=program)
    bindings = dict(ENGINE_FUNCTIONS)
    bindings.update({name: scope[name] for name in names})
    try:
        result = program.execute(bindings)
    except KeyError as exc:
        missing = str(exc.args[0]) if exc.args else "?"
        owner = _owner_of(source, missing)
        candidates = _member(scope, source, owner) if owner else {}
        line, column = _find(source, missing)
        if isinstance(candidates, dict) and set(candidates) == {"id"}:
            run.error_at(spot, line, column, "expr-unknown-name",
                         f"{what}: '{owner}' is a reference inside a reference; only its .id "
                         "is available")
            return None, None
        hint = did_you_mean(missing, candidates) if isinstance(candidates, dict) else ""
        on = f" of '{owner}'" if owner else ""
        run.error_at(spot, line, column, "expr-unknown-name",
                     f"{what}: unknown field '{missing}'{on}{hint}")
        return None, None
    except RuntimeError as exc:
        match = re.search(r"Undefined variable or function: '(\w+)'", str(exc))
        if match:
            line, column = _find(source, match.group(1))
            run.error_at(spot, line, column, "expr-unknown-function",
                         f"{what}: '{match.group(1)}' cannot be called this way"
                         f"{did_you_mean(match.group(1), ENGINE_FUNCTIONS)}")
        else:
            run.error(spot, "expr-type", f"{what}: type error: {_short(str(exc))}")
        return None, None
    except ZeroDivisionError:
        return expression, None  # a property of the sample values, not of the expression
    except (TypeError, ValueError, OverflowError) as exc:
        run.error(spot, "expr-type", f"{what}: type error: {_short(str(exc))}")
        return None, None
    if want_bool and not isinstance(result, bool):
        run.error(spot, "expr-not-boolean",
                  f"{what}: must give true or false, but gives {_cel_type(result)}")
        return None, None
    return expression, result


def _find(source: str, name: str) -> tuple[int, int]:
    """Return the 1-based (line, column) of the first use of `name` in `source`."""
    match = re.search(rf"(?<![\w'\"]){re.escape(name)}\b", source)
    offset = match.start() if match else 0
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _owner_of(source: str, member: str) -> str | None:
    match = re.search(rf"\b([a-z_][a-z0-9_.]*)\.{re.escape(member)}\b", source)
    return match.group(1) if match else None


def _member(scope: Mapping, source: str, path: str):
    """Return the sample value at a dotted path such as customer.owner."""
    value: Any = scope
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return {}
        value = value[part]
    return value


_MACROS = ("all", "exists", "exists_one", "map", "filter")


def _macro_variables(source: str) -> set[str]:
    """Names bound by CEL macros (x.exists(v, ...)), which are not fields."""
    try:
        tree = parse_tree(source)
    except TreeSyntaxError:
        return set()
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, Call) and node.target is not None and node.function in _MACROS \
                and node.args and isinstance(node.args[0], Name):
            found.add(node.args[0].name)
        for child in vars(node).values():
            for item in (child if isinstance(child, tuple) else (child,)):
                if isinstance(item, tuple):
                    for sub in item:
                        if hasattr(sub, "offset"):
                            walk(sub)
                elif hasattr(item, "offset"):
                    walk(item)
    walk(tree)
    return found


def _short(message: str) -> str:
    first = message.split("\n")[0]
    match = _FIRST_SENTENCE.match(first)
    text = match.group(1).rstrip(".") if match else first
    if "No such overload" in text:
        return ("the operands' types do not fit together (a whole number with a decimal, text "
                "with a number, a date with text...: CEL converts nothing by itself; write 100.0 "
                "for a decimal, double(x), string(x) or timestamp('2024-01-01T00:00:00Z'))")
    if re.search(r"\b(int|Int)\b.*\b(double|Double|float)\b|"
                 r"\b(double|Double|float)\b.*\b(int|Int)\b", text):
        text += (" (CEL never mixes whole numbers and decimals: write 100.0 instead of 100, or "
                 "double(x))")
    return text


def _cel_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def fits_field(field: Field, value) -> bool:
    """Whether a sample result of a default/compute/set can be stored in `field`."""
    if value is None:
        return True
    cel_type = field.kind.cel_type
    if cel_type in ("double", "int"):
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if cel_type == "bool":
        return isinstance(value, (bool, str))
    if cel_type == "map":
        return isinstance(value, (int, dict)) and not isinstance(value, bool)
    if cel_type == "list":
        return isinstance(value, list)
    if cel_type == "timestamp":
        return not isinstance(value, (bool, int, float, list, dict))
    if cel_type == "string":
        return not isinstance(value, (list, dict))
    return True


def describe(value) -> str:
    return _cel_type(value)
