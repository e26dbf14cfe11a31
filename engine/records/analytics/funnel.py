"""`kind: funnel`: a workflow's states in order, how many records reached each, the conversion
from step to step, and the average days a record stays in each state.

The history comes from the audit trail, in SQL: a record enters, when it is created, the state
its first transition left (its current state if it has had none: imported or seeded records may
start past the initial state), and the state a transition's audit entry (`transition:<name>`) moved it to
(`changes: {state_field: [old, new]}`; when the state field is not tracked, the transition's
target). A stay lasts until the record's next entry (lead() over the record's entries); stays
still going on are left out of the average, so a final state has no average.

    records     = records in the state now
    reached     = records that were ever in the state
    conversion  = reached / reached of the previous step (none for the first)
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.records.analytics.common import Context, column, number
from engine.storage.sqlexpr import dialect_function

DEFAULT_SORT = ()  # the workflow's order
LABELS = {
    "records": {"en": "Records now", "zh": "当前数量"},
    "reached": {"en": "Reached", "zh": "到达数量"},
    "conversion": {"en": "Conversion from previous step", "zh": "上一步转化率"},
    "average_days": {"en": "Average days in state", "zh": "平均停留天数"},
}
# fractional days between two timestamps
_days_apart = dialect_function("_days_apart", sa.Float(),
                               "(EXTRACT(EPOCH FROM ({1}) - ({0})) / 86400.0)",
                               "(julianday({1}) - julianday({0}))")


def refuse_hidden(ctx: Context) -> None:
    """Refuse the report to a viewer who may not read the state field."""
    ctx.refuse_hidden((ctx.analysis.field,))


def run(ctx: Context):
    """Return the columns and the rows, one per step of the funnel, in order."""
    a, service, table = ctx.analysis, ctx.service, ctx.table
    workflow = service.registry.workflows[a.workflow]
    audit = service.audit
    records = sa.select(table.c.id, table.c.created_at, table.c[a.field].label("state")) \
        .where(*ctx.conditions).cte("records")
    now_in = sa.select(records.c.state, sa.func.count()).group_by(records.c.state)

    recorded_state = audit.c.changes[(a.field, 1)].as_string()
    transition_target = sa.case(
        {f"transition:{t.name}": t.target for t in workflow.transitions.values()},
        value=audit.c.action)
    # the state a record was created in: the one its first transition left, or, with no
    # transition yet, the one it is in (imported and seeded records may start further on)
    transitions_of_record = (audit.c.entity == ctx.entity.name,
                             audit.c.record_id == records.c.id,
                             audit.c.action.like("transition:%"))
    first_left = sa.select(audit.c.changes[(a.field, 0)].as_string()).where(
        *transitions_of_record).order_by(audit.c.id).limit(1).correlate(records) \
        .scalar_subquery()
    moved_since = sa.exists().where(*transitions_of_record).correlate(records)
    initial = sa.literal(workflow.initial, sa.String())
    created = sa.select(records.c.id.label("record"), records.c.created_at.label("at"),
                        sa.literal(0).label("seq"),
                        sa.func.coalesce(first_left, sa.case((moved_since, initial),
                                                             else_=records.c.state))
                        .label("state"))
    moved = sa.select(audit.c.record_id, audit.c.at, audit.c.id,
                      sa.func.coalesce(recorded_state, transition_target)) \
        .select_from(audit.join(records, records.c.id == audit.c.record_id)) \
        .where(audit.c.entity == ctx.entity.name, audit.c.action.like("transition:%"))
    entries = sa.union_all(created, moved).cte("entries")
    left_at = sa.func.lead(entries.c.at).over(partition_by=entries.c.record,
                                              order_by=(entries.c.at, entries.c.seq))
    stays = sa.select(entries.c.record, entries.c.state, entries.c.at,
                      left_at.label("left_at")).cte("stays")
    per_state = sa.select(stays.c.state, sa.func.count(sa.distinct(stays.c.record)),
                          sa.func.avg(_days_apart(stays.c.at, stays.c.left_at))) \
        .group_by(stays.c.state)
    with service.engine.connect() as conn:
        current = dict(conn.execute(now_in).all())
        history = {state: (reached, average)
                   for state, reached, average in conn.execute(per_state).all()}

    rows, previous = [], None
    for state in a.states:
        reached, average = history.get(state, (0, None))
        conversion = reached / previous if previous else None
        rows.append([state, current.get(state, 0), reached, conversion, number(average)])
        previous = reached
    state_field = ctx.field(a.field)
    columns = [column(ctx, "state", "enum", state_field.label),
               column(ctx, "records", "integer", LABELS["records"]),
               column(ctx, "reached", "integer", LABELS["reached"]),
               column(ctx, "conversion", "percent", LABELS["conversion"]),
               column(ctx, "average_days", "number", LABELS["average_days"])]
    return columns, rows
