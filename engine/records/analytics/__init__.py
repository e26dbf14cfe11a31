"""Reports with an analytic `kind` (rfm, purchase_cycle, basket, funnel, forecast).

Each kind is one module with a `run(ctx)` that aggregates in the database (GROUP BY, window
functions, a self-join for baskets) and returns its columns and rows; Python only does the
last arithmetic on the small aggregated result. Row permissions, the report's `where` and the
request's filters narrow the report's records before anything is counted, exactly as for a
group-by report, and the answer has the same `{"columns", "rows"}` shape.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.records.access import Caller
from engine.records.analytics import basket, forecast, funnel, purchase_cycle, rfm
from engine.records.analytics.common import Context, today_utc
from engine.records.reports import json_value, record_conditions
from engine.registry.model import Report

_PLAIN = ("integer", "text", "enum", "reference")  # columns whose cells are int, str or None
_KINDS = {"rfm": rfm, "purchase_cycle": purchase_cycle, "basket": basket, "funnel": funnel,
          "forecast": forecast}


def run_analysis(service, caller: Caller, report: Report,
                 params: Mapping[str, Any] | None = None) -> dict:
    """Return {"columns": [...], "rows": [[...]]} of an analytic report, for this caller."""
    module = _KINDS[report.kind]
    entity = service.registry.entities[report.entity]
    table = service.schema.entities[entity.name]
    ctx = Context(service, caller, report, entity, table,
                  tuple(record_conditions(service, caller, report, table, params)), today_utc())
    module.refuse_hidden(ctx)
    columns, rows = module.run(ctx)
    names = [c["name"] for c in columns]
    for key, descending in reversed(report.sort or module.DEFAULT_SORT):
        position = names.index(key)
        # one stable pass a key; the first item keeps empty values last in both directions,
        # and two empty values never get compared
        if descending:
            rows.sort(key=lambda r, p=position: (r[p] is not None, r[p]), reverse=True)
        else:
            rows.sort(key=lambda r, p=position: (r[p] is None, r[p]))
    if report.limit:
        rows = rows[:report.limit]
    # whole numbers and texts are JSON already: convert only the other columns' cells
    converted = [i for i, c in enumerate(columns) if c["type"] not in _PLAIN]
    for row in rows:
        for i in converted:
            row[i] = json_value(row[i])
    return {"columns": columns, "rows": rows}
