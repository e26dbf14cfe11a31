"""`kind: forecast`: a sum (or count) per month, projected forward `months` months.

The database sums the records per calendar month (UTC) over the last `history` complete months
and the current one. The method, on those few numbers (documented in docs/reports.md):

1. History is the complete months from the first month with data to last month; a month
   without records counts as 0. The current month is not complete, so it is forecast (and its
   total so far is shown as its actual).
2. Seasonality, only with 24 months of history or more: over the latest whole years of
   history, each calendar month's index is its average divided by the average of all months
   (no seasonality when that average is 0). Otherwise every index is 1.
3. Trend: a least-squares straight line through the last 12 months of history (fewer if there
   are fewer), each divided by its month's index first.
4. A month ahead is the line's value there times its calendar month's index, never below 0.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.records.analytics.common import Context, column, value_type
from engine.records.reports import bucket
from engine.storage.tables import UTCDateTime

DEFAULT_SORT = ()  # month order
TREND_MONTHS, SEASONAL_MONTHS = 12, 24
LABELS = {
    "month": {"en": "Month", "zh": "月份"},
    "actual": {"en": "Actual", "zh": "实际"},
    "forecast": {"en": "Forecast", "zh": "预测"},
}


def refuse_hidden(ctx: Context) -> None:
    """Refuse the report to a viewer who may not read a field it uses."""
    ctx.refuse_hidden((ctx.analysis.date, ctx.analysis.amount))


def run(ctx: Context):
    """Return the columns and the rows: the history's months, then the projected ones."""
    a, table = ctx.analysis, ctx.table
    date = table.c[a.date]
    current = _index(ctx.today)
    start, end = _first_day(current - a.history), _first_day(current + 1)
    if isinstance(date.type, UTCDateTime):
        start, end = (dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc)
                      for d in (start, end))
    month = bucket(date, "month", ctx.service.engine.dialect.name)
    value = sa.func.sum(table.c[a.amount]) if a.amount else sa.func.count()
    statement = sa.select(month, value).where(*ctx.conditions, date >= start, date < end) \
        .group_by(month)
    value_kind = value_type(ctx.field(a.amount)) if a.amount else "integer"
    # PostgreSQL sums whole numbers as numeric: keep them whole, as SQLite does
    as_number = int if value_kind == "integer" else float
    with ctx.service.engine.connect() as conn:
        totals = {_parse(label): as_number(total or 0)
                  for label, total in conn.execute(statement)}

    past = [k for k in totals if k < current]
    first = min(past) if past else current
    history = [totals.get(k, 0) for k in range(first, current)]
    projected = project(history, first, current, a.months)
    rows = [[_label(k), totals.get(k, 0), None] for k in range(first, current)]
    for offset, forecast in enumerate(projected):
        k = current + offset
        rows.append([_label(k), totals.get(k, 0) if k == current else None, forecast])
    columns = [column(ctx, "month", "text", LABELS["month"]),
               column(ctx, "actual", value_kind, LABELS["actual"]),
               column(ctx, "forecast", "money" if value_kind == "money" else "number",
                      LABELS["forecast"])]
    return columns, rows


def project(history: list[float], first: int, current: int, months: int) -> list:
    """Forecast `months` months from month index `current` on, from monthly `history` that
    starts at month index `first` (see the module's docstring for the method)."""
    if not history:
        return [None] * months
    index = seasonal_index(history, first)
    recent = [(k, y / index[k % 12]) for k, y in enumerate(history, start=first)
              if index[k % 12] != 0][-TREND_MONTHS:]
    line = _line(recent)
    return [max(0.0, line(k) * index[k % 12]) for k in range(current, current + months)]


def seasonal_index(history: list[float], first: int) -> list[float]:
    """Each calendar month's average over the latest whole years of history, divided by the
    average of those years' months; all 1 with less than 24 months."""
    if len(history) < SEASONAL_MONTHS:
        return [1.0] * 12
    years = len(history) // 12
    window = list(enumerate(history, start=first))[-12 * years:]
    overall = sum(y for _, y in window) / len(window)
    if overall == 0:
        return [1.0] * 12
    index = [0.0] * 12
    for calendar_month in range(12):
        values = [y for k, y in window if k % 12 == calendar_month]
        index[calendar_month] = sum(values) / len(values) / overall
    return index


def _line(points: list[tuple[int, float]]):
    """The least-squares line through (month index, value) points, as a function of the month
    index (flat through a single point, 0 without points)."""
    if not points:
        return lambda k: 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0
    # centred on the points' mean: month indexes are ~24,000, and an intercept at 0 would
    # cancel most of a value's digits
    return lambda k: mean_y + slope * (k - mean_x)


def _index(day: dt.date) -> int:
    """A month as one whole number (months since year 0), so months add and subtract."""
    return day.year * 12 + day.month - 1


def _first_day(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _parse(label: str) -> int:
    year, month = str(label).split("-")[:2]
    return int(year) * 12 + int(month) - 1
