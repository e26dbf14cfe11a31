"""`kind: purchase_cycle`: how often each customer buys, and who is overdue.

Per customer, in SQL: the number of distinct purchase days and the first and last of them
(several purchases on one day are one visit: they would otherwise pull the average towards
zero). The average gap between consecutive purchase days is (last - first) / (days - 1), the
mean of the gaps, with no need to list them. Python adds, per customer row, the expected next
purchase (last + the average rounded to whole days) and the days it is overdue (0 while it is
not due); a customer with a single purchase day has no cycle yet (empty values).
"""

from __future__ import annotations

import datetime as dt
import math

import sqlalchemy as sa

from engine.records.analytics.common import Context, as_date, column, group_key
from engine.storage.sqlexpr import as_utc_date

DEFAULT_SORT = (("days_overdue", True), ("customer", False))
LABELS = {
    "purchases": {"en": "Purchase days", "zh": "购买天数"},
    "first_purchase": {"en": "First purchase", "zh": "首次购买"},
    "last_purchase": {"en": "Last purchase", "zh": "最近购买"},
    "average_days": {"en": "Average days between purchases", "zh": "平均购买间隔（天）"},
    "next_purchase": {"en": "Expected next purchase", "zh": "预计下次购买"},
    "days_overdue": {"en": "Days overdue", "zh": "逾期天数"},
}


def refuse_hidden(ctx: Context) -> None:
    """Refuse the report to a viewer who may not read a field it uses."""
    ctx.refuse_hidden((ctx.analysis.customer, ctx.analysis.date))


def run(ctx: Context):
    """Return the columns and the rows, one per customer."""
    a, table = ctx.analysis, ctx.table
    customer = group_key(table.c[a.customer])
    date = table.c[a.date]
    day = as_utc_date(date)
    statement = sa.select(
        customer, sa.func.count(sa.distinct(day)), sa.func.min(day), sa.func.max(day),
    ).where(*ctx.conditions, customer.is_not(None), date.is_not(None)).group_by(customer)
    with ctx.service.engine.connect() as conn:
        fetched = conn.execute(statement).all()
    rows = []
    for who, days, first, last in fetched:
        first, last = as_date(first), as_date(last)
        average = next_day = overdue = None
        if days >= 2:
            average = (last - first).days / (days - 1)
            next_day = last + dt.timedelta(days=math.floor(average + 0.5))
            overdue = max(0, (ctx.today - next_day).days)
        rows.append([who, days, first, last, average, next_day, overdue])
    customer_field = ctx.field(a.customer)
    columns = [column(ctx, "customer", "reference", customer_field.label, customer_field.to),
               column(ctx, "purchases", "integer", LABELS["purchases"]),
               column(ctx, "first_purchase", "date", LABELS["first_purchase"]),
               column(ctx, "last_purchase", "date", LABELS["last_purchase"]),
               column(ctx, "average_days", "number", LABELS["average_days"]),
               column(ctx, "next_purchase", "date", LABELS["next_purchase"]),
               column(ctx, "days_overdue", "integer", LABELS["days_overdue"])]
    return columns, rows
