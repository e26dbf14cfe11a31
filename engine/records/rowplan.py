"""Row plans: the bulk path's per-entity checks and column order, compiled once per batch.

`values.coerce` is the one definition of what a field accepts. The bulk path calls it about a
million times for 100k rows, so here each field gets a coercer specialised to it (its kind, its
limits and pattern looked up once, the common input of a CSV cell, a string, handled inline)
that returns exactly what `coerce` returns. Anything other than a string goes to `coerce`
itself, and `tests/test_rowplan.py` checks the two agree on generated input.

A row the plan cannot take as it is (an unknown key, a bad or missing value) is not judged
here: it goes through `RecordService._prepare`, which finds and words every problem.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, Callable, Mapping


from engine.records.messages import Message
from engine.records.values import (EMAIL, INTEGER_LIMIT, PHONE, URL, Invalid, _numeric_shape,
                                   coerce)
from engine.registry.model import Entity, Field

_INTEGER = re.compile(r"\s*[+-]?\d{1,19}\s*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = frozenset({"true", "1", "yes", "y", "是", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "否", "f"})
_FORMATS = {"email": EMAIL, "phone": PHONE, "url": URL}


def compile_coercer(field: Field) -> Callable[[Any], Any]:
    """Return `lambda raw: coerce(field, raw)`, faster for strings, with the same results
    (None included: it becomes None)."""
    kind = field.kind.name
    maker = _MAKERS.get(kind)
    if maker is None:
        return lambda raw: coerce(field, raw)
    return maker(field)


def _short_text(field: Field):
    """string, email, phone, url, enum: stripped, length, pattern, then the kind's own test."""
    limit = field.max_length or 0
    pattern = re.compile(field.pattern).fullmatch if field.pattern else None
    shape = _FORMATS.get(field.kind.name)
    shape_match = shape.match if shape is not None else None
    options = frozenset(field.option_values) if field.kind.name == "enum" else None

    def convert(raw):
        if raw.__class__ is not str:
            return coerce(field, raw)
        value = raw.strip()
        if not value:
            return None
        if "\x00" in value or (limit and len(value) > limit) \
                or (pattern is not None and pattern(value) is None) \
                or (shape_match is not None and shape_match(value) is None) \
                or (options is not None and value not in options):
            return coerce(field, raw)  # raises with the exact message
        return value
    return convert


def _long_text(field: Field):
    limit = field.max_length or 0
    pattern = re.compile(field.pattern).fullmatch if field.pattern else None

    def convert(raw):
        if raw.__class__ is not str:
            return coerce(field, raw)
        if not raw or ((raw[0].isspace() or raw[-1].isspace()) and not raw.strip()):
            return None
        if "\x00" in raw or (limit and len(raw) > limit) \
                or (pattern is not None and pattern(raw) is None):
            return coerce(field, raw)
        return raw
    return convert


def _integer(field: Field):
    # plain integer bounds only; a float or other bound keeps `coerce`'s own comparison
    if any(b is not None and type(b) is not int for b in (field.min, field.max)):
        return lambda raw: coerce(field, raw)
    low = field.min if field.min is not None else -INTEGER_LIMIT
    high = field.max if field.max is not None else INTEGER_LIMIT
    low, high = max(low, -INTEGER_LIMIT), min(high, INTEGER_LIMIT)
    match = _INTEGER.fullmatch

    def convert(raw):
        if raw.__class__ is not str or not raw or match(raw) is None:
            return coerce(field, raw)
        value = int(raw.strip())
        if value < low or value > high:
            return coerce(field, raw)
        return value
    return convert


def _number(field: Field):
    precision, scale = _numeric_shape(field)
    whole_digits = precision - scale
    quantum = Decimal(1).scaleb(-scale)
    low, high = (Decimal(repr(b)) if type(b) is float else b if isinstance(b, (int, Decimal))
                 else None for b in (field.min, field.max))

    def convert(raw):
        if raw.__class__ is not str:
            return coerce(field, raw)
        text = raw.strip()
        if not text or "," in text or len(text) > 60:
            return coerce(field, raw)
        try:
            value = Decimal(text)
        except InvalidOperation:
            return coerce(field, raw)
        if not value.is_finite() or (value and value.adjusted() >= whole_digits):
            return coerce(field, raw)
        if "e" in text or "E" in text:
            exponent = value.as_tuple().exponent
        else:
            dot = text.find(".")
            exponent = dot + 1 - len(text) if dot >= 0 else 0
        if exponent < -scale:
            value = value.quantize(quantum, rounding=ROUND_HALF_UP)
        if (low is not None and value < low) or (high is not None and value > high):
            return coerce(field, raw)
        return value
    return convert


def _boolean(field: Field):
    def convert(raw):
        if raw.__class__ is str:
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        return coerce(field, raw)
    return convert


def _date(field: Field):
    low = field.min if isinstance(field.min, dt.date) else None
    high = field.max if isinstance(field.max, dt.date) else None
    match = _DATE.fullmatch
    fromisoformat = dt.date.fromisoformat

    def convert(raw):
        if raw.__class__ is not str or match(raw) is None:
            return coerce(field, raw)
        try:
            value = fromisoformat(raw)
        except ValueError:
            raise Invalid(Message("not_date")) from None
        if (low is not None and value < low) or (high is not None and value > high):
            return coerce(field, raw)
        return value
    return convert


_MAKERS = {"string": _short_text, "email": _short_text, "phone": _short_text,
           "url": _short_text, "enum": _short_text, "text": _long_text,
           "integer": _integer, "decimal": _number, "money": _number, "percent": _number,
           "boolean": _boolean, "date": _date}


class RowPlan:
    """The bulk path's check of ordinary rows, column by column over a batch.

    A row is taken here when every key is a field the caller may write on create, every value
    converts, and every required field has a value; the row then gets the same defaults and
    the initial workflow state `RecordService._prepare` would give it. Any other row (or a
    whole batch, for an entity with expressions or lines to write) is left as None for the
    full path. Rows of a CSV share their keys, so a batch is one group and each field's
    coercer runs over a whole column.
    """

    def __init__(self, entity: Entity, access, workflow):
        state_field = workflow.field if workflow else None
        fields = writable_fields(entity, access, state_field)
        self.convert = {name: compile_coercer(fld) for name, fld in fields.items()}
        # a looked-up field is filled after the plan (bulk._look_up), then judged
        self.required = frozenset(n for n, fld in fields.items()
                                  if fld.required and fld.lookup is None)
        self.references = {n: fld for n, fld in fields.items() if fld.type == "reference"}
        self.defaults = [(name, fld.default) for name, fld in entity.fields.items()
                         if fld.kind.stored and fld.default is not None and name != state_field
                         and fld.lookup is None]  # a lookup's default: when nothing matches
        if state_field:
            self.defaults.append((state_field, workflow.initial))

    def check(self, rows: list[Mapping[str, Any]]) -> list[tuple[dict, list] | None]:
        """Per row: (values, deferred reference checks), or None for the full path."""
        results: list = [None] * len(rows)
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(tuple(row), []).append(i)
        for keys, positions in groups.items():
            if not self.convert.keys() >= set(keys) or not self.required <= set(keys):
                continue
            self._check_group(rows, keys, positions, results)
        return results

    def _check_group(self, rows, keys: tuple, positions: list[int], results: list) -> None:
        group = rows if len(positions) == len(rows) else [rows[i] for i in positions]
        refused: set[int] = set()
        columns = []
        for name in keys:
            column = _converted(self.convert[name], list(map(itemgetter(name), group)), refused)
            if name in self.required:
                refused.update(k for k, value in enumerate(column) if value is None or value == [])
            columns.append(column)
        defaults = [(name, value) for name, value in self.defaults if name not in keys]
        references = [(name, self.references[name]) for name in keys if name in self.references]
        no_references = ()
        for k, row_values in enumerate(zip(*columns)):
            if k in refused:
                continue
            values = dict(zip(keys, row_values))
            for name, value in defaults:
                values[name] = value
            deferred = [("reference", name, fld, values[name]) for name, fld in references
                        if values[name] is not None] if references else no_references
            results[positions[k]] = (values, deferred)


def _converted(convert, raws: list, refused: set[int]) -> list:
    """Convert a column; a value that does not convert marks its row for the full path."""
    try:
        return list(map(convert, raws))
    except Invalid:
        column = []
        for k, raw in enumerate(raws):
            try:
                column.append(convert(raw))
            except Invalid:
                column.append(None)
                refused.add(k)
        return column


def writable_fields(entity: Entity, access, state_field: str | None) -> dict[str, Field]:
    """The fields a caller may give a value on create, as the bulk fast path accepts them."""
    return {name: fld for name, fld in entity.fields.items()
            if fld.kind.stored and fld.kind.writable and fld.compute is None
            and not fld.read_only and name != state_field
            and name not in access.read_only and name not in access.hidden}
