"""`kind: basket`: which products are bought together (market basket analysis).

A basket is one record of the report's entity (an order) that has at least one product line;
its items are the distinct products of its lines. In SQL: the items of the baskets the caller
may read, the baskets per product, and the pairs of products (a self-join of the items on the
basket, product a < product b) with how many baskets hold both, kept when that is at least
`min_support` of all baskets (compared in whole numbers: a double would drop a pair sitting
exactly on the threshold). Python turns each pair into its two rules, a -> b and b -> a:

    support    = baskets with both / baskets
    confidence = baskets with both / baskets with the first product
    lift       = confidence / (baskets with the second product / baskets)
"""

from __future__ import annotations

from fractions import Fraction

import sqlalchemy as sa

from engine.records.analytics.common import Context, column

DEFAULT_SORT = (("baskets", True), ("confidence", True), ("product", False),
                ("also_bought", False))
LABELS = {
    "also_bought": {"en": "Also bought", "zh": "同时购买"},
    "baskets": {"en": "Baskets with both", "zh": "同时购买的单数"},
    "support": {"en": "Support", "zh": "支持度"},
    "confidence": {"en": "Confidence", "zh": "置信度"},
    "lift": {"en": "Lift", "zh": "提升度"},
}


def refuse_hidden(ctx: Context) -> None:
    """Refuse the report to a viewer who may not read the lines or their product field."""
    a = ctx.analysis
    ctx.refuse_hidden((a.lines,))
    ctx.refuse_hidden((a.product,), ctx.service.registry.entities[a.line_entity])


def run(ctx: Context):
    """Return the columns and the rows, two per pair of products (one rule each way)."""
    a, service = ctx.analysis, ctx.service
    line_entity = service.registry.entities[a.line_entity]
    lines = service.schema.entities[a.line_entity]
    product = lines.c[a.product]
    baskets = sa.select(ctx.table.c.id).where(*ctx.conditions)
    items = sa.select(lines.c.parent_id.label("basket"), product.label("item")).distinct() \
        .where(lines.c.parent_id.in_(baskets), product.is_not(None),
               lines.c.deleted_at.is_(None)).cte("items")
    total = sa.select(sa.func.count(sa.distinct(items.c.basket))).scalar_subquery()
    per_item = sa.select(items.c.item, sa.func.count().label("n")) \
        .group_by(items.c.item).cte("per_item")
    first, second = items.alias("first"), items.alias("second")
    share = Fraction(str(a.min_support))  # exact: 0.3 is 3/10, not 0.299999...
    together = sa.func.count()
    pairs = sa.select(first.c.item.label("a"), second.c.item.label("b"),
                      together.label("n")) \
        .select_from(first.join(second, sa.and_(first.c.basket == second.c.basket,
                                                first.c.item < second.c.item))) \
        .group_by(first.c.item, second.c.item) \
        .having(together * share.denominator >= total * share.numerator).cte("pairs")
    count_a, count_b = per_item.alias("count_a"), per_item.alias("count_b")
    statement = sa.select(pairs.c.a, pairs.c.b, pairs.c.n, count_a.c.n, count_b.c.n, total) \
        .select_from(pairs.join(count_a, count_a.c.item == pairs.c.a)
                     .join(count_b, count_b.c.item == pairs.c.b))
    with service.engine.connect() as conn:
        fetched = conn.execute(statement).all()
    rows = []
    for x, y, both, with_x, with_y, baskets_total in fetched:
        support = both / baskets_total
        for first_item, second_item, with_first, with_second in ((x, y, with_x, with_y),
                                                                 (y, x, with_y, with_x)):
            confidence = both / with_first
            lift = confidence / (with_second / baskets_total)
            rows.append([first_item, second_item, both, support, confidence, lift])
    product_field = ctx.field(a.product, line_entity)
    columns = [column(ctx, "product", "reference", product_field.label, a.product_entity),
               column(ctx, "also_bought", "reference", LABELS["also_bought"], a.product_entity),
               column(ctx, "baskets", "integer", LABELS["baskets"]),
               column(ctx, "support", "percent", LABELS["support"]),
               column(ctx, "confidence", "percent", LABELS["confidence"]),
               column(ctx, "lift", "number", LABELS["lift"])]
    return columns, rows
