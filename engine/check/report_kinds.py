"""Reports with `kind:`: the keys each analytic kind takes, checked against the report's entity.

The JSON Schema checks each key's shape and the keys a kind requires; here every key is checked
for meaning (a `date` that is a date, a `product` that is a reference of the line entity...)
and a key that belongs to another kind is reported at the key, naming the kind it belongs to.
"""

from __future__ import annotations

from engine.check.context import CheckRun, Spot
from engine.check.entities import SYSTEM_COLUMNS
from engine.errors import did_you_mean
from engine.registry.analyses import Analysis, Basket, Forecast, Funnel, PurchaseCycle, Rfm
from engine.registry.model import Entity, Workflow

COMMON_KEYS = frozenset({"report", "label", "description", "entity", "kind", "where", "sort",
                         "limit", "chart"})
KIND_KEYS = {
    None: frozenset({"group_by", "measures"}),
    "rfm": frozenset({"customer", "date", "amount"}),
    "purchase_cycle": frozenset({"customer", "date"}),
    "basket": frozenset({"lines", "product", "min_support"}),
    "funnel": frozenset({"states"}),
    "forecast": frozenset({"date", "amount", "months", "history"}),
}
DEFAULT_MIN_SUPPORT = 0.01
DEFAULT_MONTHS, DEFAULT_HISTORY = 6, 36
_DATE_SYSTEM = ("created_at", "updated_at")


def check_kind_keys(run: CheckRun, name: str, data: dict, spot: Spot) -> bool:
    """Report every key that does not apply to the report's kind; return whether none did."""
    kind = data.get("kind")
    allowed = COMMON_KEYS | KIND_KEYS[kind]
    good = True
    for key in data:
        if key in allowed:
            continue
        owners = [k or "a group-by report (no kind)" for k, keys in KIND_KEYS.items()
                  if key in keys]
        this = f"a report of kind {kind}" if kind else "a group-by report (no kind)"
        run.error(spot / key, "key-not-for-kind", f"report '{name}': key '{key}' does not apply "
                  f"to {this}; it belongs to {' and '.join(owners)}", key=True)
        good = False
    return good


def compile_analysis(run: CheckRun, name: str, data: dict, spot: Spot, entity: Entity,
                     entities: dict[str, Entity],
                     workflows: dict[str, Workflow]) -> Analysis | None:
    """Compile the kind-specific keys of report `name` into its analysis, or report why not."""
    kind = data["kind"]
    fields = _Fields(run, name, kind, data, spot, entity)
    if kind in ("rfm", "purchase_cycle"):
        customer = fields.reference("customer")
        date = fields.date("date")
        if kind == "purchase_cycle":
            return PurchaseCycle(customer, date) if fields.good else None
        amount = fields.number("amount")
        return Rfm(customer, date, amount) if fields.good else None
    if kind == "forecast":
        date = fields.date("date")
        amount = fields.number("amount") if "amount" in data else None
        if not fields.good:
            return None
        return Forecast(date, amount, data.get("months", DEFAULT_MONTHS),
                        data.get("history", DEFAULT_HISTORY))
    if kind == "basket":
        return _basket(run, name, data, spot, entity, entities, fields)
    return _funnel(run, name, data, spot, entity, workflows)


class _Fields:
    """Looks up the fields a kind's keys name, reporting each wrong one at its key."""

    def __init__(self, run, report, kind, data, spot, entity):
        self.run, self.report, self.kind, self.data, self.spot = run, report, kind, data, spot
        self.entity, self.good = entity, True

    def _found(self, key: str, entity: Entity | None = None, system: bool = False):
        entity = entity or self.entity
        name = self.data[key]
        fld = entity.fields.get(name)
        if fld is None and not (system and name in SYSTEM_COLUMNS):
            self.fail(key, "unknown-field", f"'{entity.name}' has no field "
                      f"'{name}'{did_you_mean(name, entity.fields)}")
            return None, name
        return fld, name

    def fail(self, key: str, code: str, message: str) -> None:
        self.run.error(self.spot / key, code, f"report '{self.report}' {key}: {message}")
        self.good = False

    def reference(self, key: str, entity: Entity | None = None) -> str:
        fld, name = self._found(key, entity)
        if fld is not None and fld.type != "reference":
            self._wrong(key, name, fld.type, "a reference field")
        return name

    def date(self, key: str) -> str:
        fld, name = self._found(key, system=True)
        is_date = name in _DATE_SYSTEM or (fld is not None and fld.type in ("date", "datetime"))
        if (fld is not None or name in SYSTEM_COLUMNS) and not is_date:
            self._wrong(key, name, fld.type if fld else "system", "a date or datetime field")
        return name

    def number(self, key: str) -> str:
        fld, name = self._found(key)
        if fld is not None and not (fld.kind.numeric and fld.kind.stored):
            self._wrong(key, name, fld.type, "a number field")
        return name

    def _wrong(self, key: str, name: str, type_name: str, wanted: str) -> None:
        article = "an" if type_name[:1] in "aeiou" else "a"
        self.fail(key, "bad-analysis-field", f"'{name}' is {article} {type_name} field; a "
                  f"report of kind {self.kind} needs {wanted} here")


def _basket(run, name, data, spot, entity: Entity, entities, fields: _Fields) -> Basket | None:
    lines_name = data["lines"]
    lines = entity.fields.get(lines_name)
    if lines is None or lines.type != "lines":
        candidates = [n for n, f in entity.fields.items() if f.type == "lines"]
        fields.fail("lines", "bad-analysis-field", f"'{lines_name}' is not a lines field of "
                    f"'{entity.name}'{did_you_mean(lines_name, candidates)}")
        return None
    line_entity = entities[lines.child_entity]
    product = fields.reference("product", line_entity)
    if not fields.good:
        return None
    target = line_entity.fields[product].to
    return Basket(lines_name, line_entity.name, product, target,
                  float(data.get("min_support", DEFAULT_MIN_SUPPORT)))


def _funnel(run, name, data, spot, entity: Entity, workflows) -> Funnel | None:
    workflow = next((w for w in workflows.values() if w.entity == entity.name), None)
    if workflow is None:
        run.error(spot / "entity", "workflow-missing", f"report '{name}': a funnel needs a "
                  f"workflow, and '{entity.name}' has none")
        return None
    states = tuple(data.get("states") or workflow.states)
    good = True
    for i, state in enumerate(data.get("states") or ()):
        if state not in workflow.states:
            run.error(spot / "states" / i, "unknown-state", f"report '{name}' states: workflow "
                      f"'{workflow.name}' has no state '{state}'"
                      f"{did_you_mean(state, workflow.states)}")
            good = False
    if len(set(states)) != len(states):
        run.error(spot / "states", "bad-value", f"report '{name}' states: a state is listed "
                  "twice")
        good = False
    return Funnel(workflow.name, workflow.field, states) if good else None
