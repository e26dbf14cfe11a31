"""Check money in several currencies (docs/language.md "Money and currencies").

- `base_currency` (app.yaml, or a pack's default in pack.yaml) is an ISO 4217 code;
- a money or rollup field's `currency` is an ISO code, or names a field of the same entity
  that holds one: an enum whose options are all ISO codes, or a string field (its values are
  then checked, and upper-cased, when written: `holds_currency`);
- `rate_date` goes with a currency field and names a date or datetime field (or a system
  timestamp) of the same entity;
- a report or metric that sums, averages or compares such a field needs a base currency to
  convert into.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.config.layers import Layer
from engine.errors import did_you_mean
from engine.registry.currencies import CODE_SHAPE, ISO_4217, currency_hint
from engine.registry.model import Entity, Report

_HOLDER_TYPES = ("enum", "string")
_RATE_DATE_TYPES = ("date", "datetime")
_RATE_DATE_SYSTEM = ("created_at", "updated_at")
_CONVERTED_AGGS = ("sum", "avg", "min", "max")


def base_currency(run: CheckRun, layers: list[Layer]) -> str | None:
    """The site's base currency: app.yaml's, else the highest pack's that sets one."""
    chosen = None
    for layer in layers:
        doc = layer.identity
        if doc is None or "base_currency" not in doc.data:
            continue
        code = doc.data["base_currency"]
        if not isinstance(code, str) or not CODE_SHAPE.match(code):
            continue  # the schema check reported its shape
        if code not in ISO_4217:
            run.error(Spot(doc, ("base_currency",)), "bad-currency",
                      f"base_currency: '{code}' is not an ISO 4217 currency code"
                      f"{currency_hint(code)}")
            continue
        chosen = code
    return chosen


def compile_currencies(run: CheckRun, drafts, entities: dict[str, Entity]
                       ) -> dict[str, Entity]:
    """Check every `currency` and `rate_date`; mark the string fields that hold a currency."""
    result = {}
    for name, entity in entities.items():
        draft = drafts[name]
        holders, checked = set(), set()
        for fld in entity.fields.values():
            if fld.currency is None and fld.rate_date is None:
                continue
            spots = draft.fields[fld.name].spots
            holder = _check_currency(run, spots, entity, fld, draft)
            if holder is not None:
                checked.add(holder)
                if entity.fields[holder].type == "string":
                    holders.add(holder)
            _check_rate_date(run, spots, entity, fld, holder)
        for holder in sorted(checked):
            _check_options(run, draft, entity.fields[holder])
        if holders:
            fields = {n: dataclasses.replace(f, holds_currency=True) if n in holders else f
                      for n, f in entity.fields.items()}
            entity = dataclasses.replace(entity, fields=MappingProxyType(fields))
        result[name] = entity
    return result


def _check_currency(run, spots, entity: Entity, fld, draft) -> str | None:
    """Check a field's `currency`; return the field holding it, when it names one."""
    code = fld.currency
    what = f"field '{fld.name}'"
    if code is None:
        return None
    if code in entity.fields:
        holder = entity.fields[code]
        if holder.type not in _HOLDER_TYPES:
            run.error(spots["currency"], "bad-currency-field",
                      f"{what}: currency field '{code}' is {_a(holder.type)} field; it must be an "
                      f"enum of ISO 4217 codes or a string field")
            return None
        return code
    if CODE_SHAPE.match(code):
        if code not in ISO_4217:
            run.error(spots["currency"], "bad-currency", f"{what}: '{code}' is not an ISO 4217 "
                      f"currency code{currency_hint(code)}")
        return None
    hint = currency_hint(code) or did_you_mean(code, [n for n, f in entity.fields.items()
                                                      if f.type in _HOLDER_TYPES])
    run.error(spots["currency"], "bad-currency", f"{what}: currency '{code}' is neither an ISO "
              f"4217 code nor a field of '{entity.name}'{hint}")
    return None


def _check_options(run, draft, holder) -> None:
    """Every option of an enum that holds a currency is an ISO code (checked once per field)."""
    spots = draft.fields[holder.name].spots
    for i, option in enumerate(holder.option_values):
        if option not in ISO_4217:
            spot = spots["options"] / i if "options" in spots else draft.fields[holder.name].spot
            run.error(spot, "bad-currency", f"field '{holder.name}' holds a currency: option "
                      f"'{option}' is not an ISO 4217 currency code{currency_hint(option)}")


def _check_rate_date(run, spots, entity: Entity, fld, holder: str | None) -> None:
    name = fld.rate_date
    if name is None:
        return
    what = f"field '{fld.name}'"
    if holder is None:
        if fld.currency is None or CODE_SHAPE.match(fld.currency):
            run.error(spots["rate_date"], "bad-rate-date", f"{what}: rate_date applies only "
                      f"when currency names a field (amounts in one currency are never "
                      f"converted)")
        return
    if name in _RATE_DATE_SYSTEM:
        return
    target = entity.fields.get(name)
    if target is None:
        candidates = [n for n, f in entity.fields.items() if f.type in _RATE_DATE_TYPES]
        hint = did_you_mean(name, candidates + list(_RATE_DATE_SYSTEM))
        run.error(spots["rate_date"], "unknown-field", f"{what}: rate_date: '{entity.name}' "
                  f"has no field '{name}'{hint}")
    elif target.type not in _RATE_DATE_TYPES:
        run.error(spots["rate_date"], "bad-rate-date", f"{what}: rate_date '{name}' is "
                  f"{_a(target.type)} field; it must be a date or datetime field")


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def varying_currency(entity: Entity, field_name: str | None) -> bool:
    """Whether a field's amounts may be in several currencies (its currency names a field)."""
    fld = entity.fields.get(field_name or "")
    return fld is not None and fld.currency is not None and fld.currency in entity.fields


def check_conversions(run: CheckRun, base: str | None, report_docs, reports: dict[str, Report],
                      dashboard_docs, dashboards, entities: dict[str, Entity]) -> None:
    """Refuse a report measure or metric that converts money when no base currency is set,
    and an analytic report whose amount is in several currencies (it cannot convert)."""
    for name, report in reports.items():
        amount = getattr(report.analysis, "amount", None)
        if amount and varying_currency(entities[report.entity], amount):
            run.error(Spot(report_docs[name], ("amount",)), "bad-currency-field",
                      f"report '{name}': a {report.kind} report does not convert currencies, "
                      f"and the currency of '{report.entity}.{amount}' varies by record; use "
                      f"a field in one currency")
    if base is not None:
        return
    advice = "set base_currency in app.yaml (or the pack's default in pack.yaml)"
    for name, report in reports.items():
        for measure in report.measures.values():
            source = entities[measure.of_entity or report.entity]
            if measure.agg in _CONVERTED_AGGS and varying_currency(source, measure.field):
                run.error(Spot(report_docs[name], ("measures", measure.name)),
                          "missing-base-currency",
                          f"report '{name}' measure '{measure.name}': {measure.agg} of "
                          f"'{source.name}.{measure.field}', whose currency varies by record, "
                          f"needs a base currency to convert into: {advice}")
    for name, dashboard in dashboards.items():
        for i, widget in enumerate(dashboard.widgets):
            source = entities.get(widget.metric_entity or "")
            if source is not None and (widget.metric_agg or "count") in _CONVERTED_AGGS and \
                    varying_currency(source, widget.metric_field):
                run.error(Spot(dashboard_docs[name], ("widgets", i, "metric")),
                          "missing-base-currency",
                          f"dashboard '{name}' widget {i + 1}: {widget.metric_agg} of "
                          f"'{source.name}.{widget.metric_field}', whose currency varies by "
                          f"record, needs a base currency to convert into: {advice}")
