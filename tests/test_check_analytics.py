"""Checking measures over related records (`of:`) and the analytic report kinds' keys."""

import pytest

import engine
from conftest import FIXTURE_ROOT, problems_of

ORDERS = {
    "entities/product.yaml": "entity: product\nfields: {title: {type: string}}\n",
    "entities/order.yaml": """
        entity: order
        fields:
          customer: {type: reference, to: customer}
          campaign: {type: reference, to: opportunity}
          ordered_on: {type: date}
          note: {type: string}
          lines: {type: lines, entity: order_line}
          total: {type: rollup, of: lines, field: amount, agg: sum}
        """,
    "entities/order_line.yaml": """
        entity: order_line
        parent: order
        fields:
          product: {type: reference, to: product}
          label: {type: string}
          amount: {type: money}
        """,
}


def test_measures_over_related_records_compile(site, load):
    registry = load(site({**ORDERS, "reports/value.yaml": """
        report: customer_value
        entity: customer
        group_by: [id, grade]
        measures:
          orders: {agg: count, of: order.customer}
          spent: {agg: sum, of: order.customer, field: total, where: "note != 'test'"}
          deals: {agg: sum, of: opportunity.customer, field: amount}
          per_order: {expr: "orders == 0 ? null : spent / double(orders)"}
        sort: -spent
        """}))
    report = registry.reports["customer_value"]
    assert report.kind == "group"
    spent = report.measures["spent"]
    assert (spent.of_entity, spent.of_field, spent.field, spent.agg) == (
        "order", "customer", "total", "sum")
    assert spent.where.source == "note != 'test'"
    assert report.measures["orders"].format == "integer"


def test_related_measure_mistakes(site):
    path = site({**ORDERS, "reports/related.yaml": """
        report: related
        entity: customer
        group_by: [id]
        measures:
          a: {agg: sum, of: oportunity.customer, field: amount}
          b: {agg: sum, of: opportunity.name, field: amount}
          c: {agg: sum, of: order.campaign, field: total}
          d: {agg: sum, of: order.custmer, field: total}
          e: {agg: sum, of: order.customer, field: note}
          f: {agg: count, of: opportunity.customer, where: "stage == 'won' && amout > 1.0"}
          g: {agg: max, of: opportunity.customer, field: amont}
          h: {expr: "1", of: opportunity.customer}
          i: {agg: avg, of: opportunity.customer, field: amount, where: "name.matches('x')"}
          j: {agg: sum, of: opportunity, field: amount}
        """})
    assert problems_of(path) == [
        ("reports/related.yaml", 14, 21, "bad-value"),  # `of` without `.field`: the schema
    ]
    (path / "reports/related.yaml").write_text(
        (path / "reports/related.yaml").read_text().replace(
            "  j: {agg: sum, of: opportunity, field: amount}\n", ""))
    assert problems_of(path) == [
        ("reports/related.yaml", 5, 21, "unknown-entity"),
        ("reports/related.yaml", 6, 21, "bad-of"),  # a string field
        ("reports/related.yaml", 7, 21, "bad-of"),  # refers to opportunity, not customer
        ("reports/related.yaml", 8, 21, "bad-of"),  # no such field
        ("reports/related.yaml", 9, 44, "bad-measure"),  # sums text
        ("reports/related.yaml", 10, 71, "expr-unknown-name"),  # the where is about orders
        ("reports/related.yaml", 11, 50, "unknown-field"),
        ("reports/related.yaml", 12, 18, "measure-kind"),
        ("reports/related.yaml", 13, 71, "expr-not-sql"),
    ]


def test_related_measure_messages_name_the_fix(site):
    path = site({**ORDERS, "reports/r.yaml": """
        report: r
        entity: customer
        measures:
          a: {agg: count, of: order.campaign}
        """})
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=path, root=FIXTURE_ROOT)
    assert [p.message for p in caught.value.problems] == [
        "report 'r' measure 'a' of: 'order.campaign' refers to 'opportunity', not to "
        "'customer'; 'of' names a reference field to the report's entity 'customer' (the "
        "fields of order that refer to customer: customer)"]


def test_analytic_kinds_compile(site, load):
    registry = load(site({
        **ORDERS,
        "reports/rfm.yaml": """
            report: rfm
            kind: rfm
            entity: order
            where: "note != 'test'"
            customer: customer
            date: ordered_on
            amount: total
            sort: -monetary
            limit: 100
            """,
        "reports/cycle.yaml": "report: cycle\nkind: purchase_cycle\nentity: order\n"
                              "customer: customer\ndate: created_at\n",
        "reports/basket.yaml": "report: basket\nkind: basket\nentity: order\nlines: lines\n"
                               "product: product\n",
        "reports/funnel.yaml": "report: funnel\nkind: funnel\nentity: opportunity\nchart: funnel\n",
        "reports/forecast.yaml": "report: forecast\nkind: forecast\nentity: opportunity\n"
                                 "date: close_date\namount: amount\nmonths: 12\n",
    }))
    reports = registry.reports
    assert reports["rfm"].kind == "rfm" and reports["rfm"].sort == (("monetary", True),)
    assert reports["rfm"].where.source == "note != 'test'"
    assert (reports["cycle"].analysis.customer, reports["cycle"].analysis.date) == (
        "customer", "created_at")
    basket = reports["basket"].analysis
    assert (basket.line_entity, basket.product, basket.product_entity, basket.min_support) == (
        "order_line", "product", "product", 0.01)
    funnel = reports["funnel"].analysis
    assert funnel.states == ("prospecting", "qualification", "proposal", "negotiation", "won",
                             "lost")  # every state, in the workflow's order
    assert (funnel.workflow, funnel.field) == ("opportunity_pipeline", "stage")
    forecast = reports["forecast"].analysis
    assert (forecast.amount, forecast.months, forecast.history) == ("amount", 12, 36)
    assert reports["funnel"].measures == {} and reports["funnel"].group_by == ()


def test_analytic_kind_mistakes(site):
    path = site({
        **ORDERS,
        "reports/rfm.yaml": """
            report: rfm_bad
            kind: rfm
            entity: order
            customer: note
            date: total
            amount: ordered_on
            group_by: [customer]
            min_support: 0.5
            sort: -monetry
            """,
        "reports/cycle.yaml": """
            report: cycle_bad
            kind: purchase_cycle
            entity: order
            where: "nte == 'x'"
            customer: custmer
            date: owner
            amount: total
            """,
        "reports/basket.yaml": """
            report: basket_bad
            kind: basket
            entity: order
            lines: note
            product: label
            """,
        "reports/basket2.yaml": """
            report: basket_bad2
            kind: basket
            entity: order
            lines: lines
            product: label
            measures: {n: {agg: count}}
            """,
        "reports/funnel.yaml": """
            report: funnel_bad
            kind: funnel
            entity: opportunity
            states: [prospecting, qualifcation, won, won]
            """,
        "reports/funnel2.yaml": "report: funnel_bad2\nkind: funnel\nentity: customer\n",
        "reports/forecast.yaml": """
            report: forecast_bad
            kind: forecast
            entity: opportunity
            date: name
            amount: loss_reason
            """,
        "reports/group.yaml": """
            report: group_bad
            entity: opportunity
            measures: {n: {agg: count}}
            months: 3
            """,
    })
    assert problems_of(path) == [
        ("reports/basket.yaml", 4, 8, "bad-analysis-field"),  # not a lines field
        ("reports/basket2.yaml", 5, 10, "bad-analysis-field"),  # not a reference
        ("reports/basket2.yaml", 6, 1, "key-not-for-kind"),
        ("reports/cycle.yaml", 4, 9, "expr-unknown-name"),
        ("reports/cycle.yaml", 5, 11, "unknown-field"),
        ("reports/cycle.yaml", 6, 7, "bad-analysis-field"),  # owner is not a date
        ("reports/cycle.yaml", 7, 1, "key-not-for-kind"),  # amount is for rfm and forecast
        ("reports/forecast.yaml", 4, 7, "bad-analysis-field"),
        ("reports/forecast.yaml", 5, 9, "bad-analysis-field"),
        ("reports/funnel.yaml", 4, 9, "bad-value"),  # won twice
        ("reports/funnel.yaml", 4, 23, "unknown-state"),
        ("reports/funnel2.yaml", 3, 9, "workflow-missing"),
        ("reports/group.yaml", 4, 1, "key-not-for-kind"),
        ("reports/rfm.yaml", 4, 11, "bad-analysis-field"),
        ("reports/rfm.yaml", 5, 7, "bad-analysis-field"),
        ("reports/rfm.yaml", 6, 9, "bad-analysis-field"),
        ("reports/rfm.yaml", 7, 1, "key-not-for-kind"),
        ("reports/rfm.yaml", 8, 1, "key-not-for-kind"),
        ("reports/rfm.yaml", 9, 7, "unknown-field"),
    ]


def test_analytic_kind_shape_mistakes(site):
    path = site({
        "reports/a.yaml": "report: a\nkind: rfn\nentity: customer\n",
        "reports/b.yaml": "report: b\nkind: rfm\nentity: opportunity\ncustomer: customer\n",
        "reports/c.yaml": "report: c\nkind: basket\nentity: opportunity\nlines: lines\n"
                          "product: product\nmin_support: 0\n",
        "reports/d.yaml": "report: d\nkind: forecast\nentity: opportunity\ndate: close_date\n"
                          "months: 40\nhistory: many\n",
        "reports/e.yaml": "report: e\nkind: funnel\nentity: opportunity\nstates: []\n"
                          "chart: funel\n",
        "reports/f.yaml": "report: f\nentity: opportunity\n",
    })
    assert problems_of(path) == [
        ("reports/a.yaml", 2, 7, "bad-value"),
        ("reports/b.yaml", 1, 1, "missing-key"),  # amount
        ("reports/b.yaml", 1, 1, "missing-key"),  # date
        ("reports/c.yaml", 6, 14, "bad-value"),
        ("reports/d.yaml", 5, 9, "bad-value"),
        ("reports/d.yaml", 6, 10, "wrong-type"),
        ("reports/e.yaml", 4, 9, "empty-value"),
        ("reports/e.yaml", 5, 8, "bad-value"),
        ("reports/f.yaml", 1, 1, "missing-key"),  # measures
    ]
