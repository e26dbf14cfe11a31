"""The standard CRM model (metadata/): marketing, sales and service as seed 002 describes them.

Each test exercises one requirement through the record service on a site with no industry
pack and the standard sample data, on SQLite and PostgreSQL. docs/packs/standard.md lists them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from packworld import REPO, UTC, create, fire, get, raises, seed_counts, today, world_fixture


w = world_fixture(None)


def _query(**filters):
    from engine.records.listing import ListQuery
    return ListQuery(filters=[(k, k, "in", str(v)) for k, v in filters.items()], limit=100)


def a_product(w, code):
    return w.service.list(w.as_("admin"), "product", _query(code=code)).data[0]


def test_standard_model_validates_without_a_pack(tmp_path):
    site = tmp_path / "plain"
    site.mkdir()
    (site / "app.yaml").write_text("app: plain\nlabel: Plain\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "validate", "--site", str(site)],
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr


def test_seed_loads_all_standard_sample_data_without_a_rejected_row(w):
    expected = seed_counts(REPO / "metadata" / "seed")
    loaded = dict(line.split(": ") for line in w.seed_lines)
    assert loaded == {k: f"{n} records" for k, n in expected.items()}
    assert expected["customer"] >= 100 and expected["opportunity"] >= 200 and expected["activity"] >= 300


def test_every_standard_report_and_dashboard_runs_on_the_sample_data(w):
    from engine.records.dashboards import dashboard_data
    for name in w.registry.reports:
        assert w.report(name)["rows"], name
    for name in w.registry.dashboards:
        widgets = dashboard_data(w.service, w.as_("admin"), name)["widgets"]
        assert all(x["kind"] != "unavailable" for x in widgets), name


def test_customer_360_view_adds_up_every_related_record(w):
    customer = create(w, "sales_rep", "customer", name="三六零测试有限公司", tier="a", key_account=True,
                      industry="manufacturing", source="exhibition", erp_code="K-360", external_id="SAP-360")
    create(w, "sales_rep", "contact", customer=customer["id"], name="全景联系人")
    deal = create(w, "sales_rep", "opportunity", name="全景商机", customer=customer["id"], amount=300000)
    create(w, "sales_rep", "activity", subject="拜访", kind="visit", customer=customer["id"])
    create(w, "sales_rep", "quote", customer=customer["id"], opportunity=deal["id"],
           lines=[{"product": a_product(w, "EQ-AC-37")["id"], "quantity": 1, "unit_price": 68000}])
    order = create(w, "sales_rep", "order", customer=customer["id"],
                   lines=[{"product": a_product(w, "EQ-AC-37")["id"], "quantity": 1, "unit_price": 68000}])
    create(w, "finance", "payment", customer=customer["id"], order=order["id"], amount=20000, method="bank_transfer")
    create(w, "sales_rep", "ticket", subject="咨询", kind="inquiry", customer=customer["id"], description="保养周期")
    record = get(w, "customer", customer)
    assert {k: record[k] for k in ("contacts_count", "open_opportunities", "pipeline_amount", "quotes_count",
                                   "orders_count", "payments_count", "total_paid", "open_tickets",
                                   "activities_count")} == {
        "contacts_count": 1, "open_opportunities": 1, "pipeline_amount": 300000, "quotes_count": 1,
        "orders_count": 1, "payments_count": 1, "total_paid": 20000, "open_tickets": 1, "activities_count": 1}
    section = next(s for s in w.registry.entities["customer"].form_sections if "total_paid" in s.fields)
    assert section.label.get("zh") == "客户全景"


def test_customer_groups_tiers_and_external_ids(w):
    group = w.service.list(w.as_("admin"), "customer", _query(code="G0001")).data[0]
    children = w.service.list(w.as_("admin"), "customer", _query(parent=group["id"])).data
    assert children and group["tier"] == "a" and group["key_account"] is True
    with raises("ValidationFailed"):
        create(w, "admin", "customer", name="重复ERP编码", erp_code=children[0]["erp_code"])


def test_lead_conversion_creates_customer_contact_and_opportunity(w):
    lead = create(w, "marketing", "lead", company="线索转化测试有限公司", contact_name="赵经理",
                  phone="13900000001", source="exhibition")
    follow_ups = w.service.list(w.as_("admin"), "activity", _query(lead=lead["id"])).data
    assert len(follow_ups) == 1  # a new lead gets a follow-up call
    fire(w, "marketing", "lead", lead, "qualify")
    converted = fire(w, "marketing", "lead", lead, "convert")
    customer = w.service.get(w.as_("admin"), "customer", converted["converted_customer"])
    deal = w.service.get(w.as_("admin"), "opportunity", converted["converted_opportunity"])
    contact = w.service.list(w.as_("admin"), "contact", _query(customer=customer["id"])).data[0]
    assert (customer["name"], customer["source"], contact["name"], deal["customer"]) == (
        "线索转化测试有限公司", "exhibition", "赵经理", customer["id"])


def test_activities_follow_up_any_record_with_due_dates_and_owners(w):
    customer = create(w, "sales_rep", "customer", name="跟进测试客户")
    deal = create(w, "sales_rep", "opportunity", name="跟进商机", customer=customer["id"])
    due = (dt.datetime.now(UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for kind in ("call", "visit", "email", "meeting", "task"):
        create(w, "sales_rep", "activity", subject=f"{kind} 跟进", kind=kind, customer=customer["id"],
               opportunity=deal["id"], due_at=due)
    mine = w.service.list(w.as_("sales_rep"), "activity", _query(opportunity=deal["id"])).data
    assert len(mine) == 5 and all(a["owner"] == w.uid("sales_rep") for a in mine)
    assert w.service.list(w.as_("marketing"), "activity", _query(opportunity=deal["id"])).data == []
    w.run_schedules()
    assert any("past its due time" in m for m in w.notified("sales_rep"))


def test_campaign_with_plan_budget_approval_expenses_and_results(w):
    campaign = create(w, "marketing", "campaign", name="标准活动测试", kind="seminar", budget=50000,
                      start_date=str(today()), end_date=str(today()), plan="邀约与回访", expected_leads=30)
    with raises("Forbidden"):
        fire(w, "marketing", "campaign", campaign, "approve")
    fire(w, "marketing", "campaign", campaign, "submit")
    assert any("approval" in m for m in w.notified("sales_manager"))
    fire(w, "sales_manager", "campaign", campaign, "approve")
    fire(w, "marketing", "campaign", campaign, "start")
    claim = create(w, "marketing", "expense_claim", campaign=campaign["id"], category="venue", amount=30000,
                   description="场地")
    fire(w, "marketing", "expense_claim", claim, "submit")
    fire(w, "finance", "expense_claim", claim, "approve")
    customer = create(w, "sales_rep", "customer", name="活动回款测试客户")
    create(w, "marketing", "lead", company="活动线索", phone="13900000002", source="campaign", campaign=campaign["id"])
    order = create(w, "sales_rep", "order", customer=customer["id"], campaign=campaign["id"],
                   lines=[{"product": a_product(w, "SV-SCADA")["id"], "quantity": 3, "unit_price": 45000}])
    create(w, "finance", "payment", customer=customer["id"], order=order["id"], campaign=campaign["id"],
           amount=120000, method="bank_transfer")
    record = get(w, "campaign", campaign)
    assert (record["actual_cost"], record["revenue"], record["leads_count"], record["orders_count"]) == (
        30000, 120000, 1, 1)
    assert float(record["roi"]) == pytest.approx(300.0)
    assert record["budget_left"] == 20000


def test_campaign_roi_report(w):
    rows = {r["name"]: r for r in w.report("campaign_roi")["rows"]}
    row = rows["标准活动测试"]
    assert (row["cost"], row["revenue"], row["orders"], row["leads"]) == (30000, 120000, 135000, 1)
    assert row["roi"] == pytest.approx(3.0)


def test_opportunity_pipeline_with_amounts_probability_close_date_and_loss_reasons(w):
    customer = create(w, "sales_rep", "customer", name="商机流程测试客户")
    deal = create(w, "sales_rep", "opportunity", name="流程商机", customer=customer["id"], amount=200000,
                  opened_on=str(today() - dt.timedelta(days=40)))
    fire(w, "sales_rep", "opportunity", deal, "qualify")
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "opportunity", deal, "propose")
    proposed = fire(w, "sales_rep", "opportunity", deal, "propose", close_date=str(today() + dt.timedelta(days=30)))
    assert (proposed["probability"], proposed["expected"]) == (50, 100000)
    fire(w, "sales_rep", "opportunity", deal, "negotiate")
    won = fire(w, "sales_rep", "opportunity", deal, "win")
    assert (won["probability"], won["close_date"], won["cycle_days"]) == (100, today(), 40)
    assert any("won" in m for m in w.notified("sales_rep"))
    lost = create(w, "sales_rep", "opportunity", name="丢单商机", customer=customer["id"], amount=50000)
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "opportunity", lost, "lose")
    assert fire(w, "sales_rep", "opportunity", lost, "lose", loss_reason="price",
                competitor="本地厂商")["stage"] == "lost"
    with raises("Forbidden"):
        fire(w, "sales_rep", "opportunity", lost, "reopen")


def test_products_with_categories_and_prices(w):
    product = a_product(w, "AU-VFD-30")
    category = w.service.get(w.as_("sales_rep"), "product_category", product["category"])
    assert category["name"].startswith("自动化与控制") and product["unit_price"] == 9800
    with raises("Forbidden"):
        w.service.update(w.as_("sales_rep"), "product", product["id"], {"unit_price": 1}, product["version"])


def test_quote_with_lines_and_discount_above_the_limit_needs_approval(w):
    customer = create(w, "sales_rep", "customer", name="报价测试客户")
    line = {"product": a_product(w, "EQ-AC-75")["id"], "quantity": 2, "unit_price": 126000}
    small = create(w, "sales_rep", "quote", customer=customer["id"], lines=[dict(line, discount=10)])
    assert small["total"] == 226800 and small["max_discount"] == 10
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "quote", small, "submit")
    assert fire(w, "sales_rep", "quote", small, "confirm")["state"] == "approved"
    big = create(w, "sales_rep", "quote", customer=customer["id"], lines=[dict(line, discount=20)])
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "quote", big, "confirm")
    fire(w, "sales_rep", "quote", big, "submit")
    with raises("Forbidden"):
        fire(w, "sales_rep", "quote", big, "approve")
    assert fire(w, "sales_manager", "quote", big, "approve")["state"] == "approved"


def test_orders_with_lines_and_payments_that_finance_sees_as_sales_does(w):
    customer = create(w, "sales_rep", "customer", name="订单回款测试客户")
    order = create(w, "sales_rep", "order", customer=customer["id"], kind="contract", contract_no="HT-TEST-1",
                   delivery_date=str(today() + dt.timedelta(days=10)), shipping_address="上海",
                   lines=[{"product": a_product(w, "EL-MTR-45")["id"], "quantity": 2, "unit_price": 15800}])
    assert order["total"] == 31600
    for step in ("confirm", "ship", "deliver"):
        fire(w, "sales_rep", "order", order, step)
    seen_by_finance = w.service.get(w.as_("finance"), "order", order["id"])
    assert seen_by_finance["total"] == 31600
    with raises("Forbidden"):
        create(w, "sales_rep", "payment", customer=customer["id"], order=order["id"], amount=1, method="cash")
    create(w, "finance", "payment", customer=customer["id"], order=order["id"], amount=31600, method="bank_transfer")
    assert w.service.get(w.as_("sales_rep"), "order", order["id"])["balance"] == 0
    assert fire(w, "finance", "order", order, "complete")["state"] == "completed"
    with raises("ValidationFailed"):
        create(w, "finance", "payment", customer=customer["id"], amount=10, method="cash",
               paid_on=str(today() + dt.timedelta(days=3)))


def test_service_tickets_with_sla_escalation_and_satisfaction(w):
    customer = create(w, "sales_rep", "customer", name="工单测试客户")
    urgent = create(w, "service_agent", "ticket", subject="停机", kind="repair", priority="urgent",
                    customer=customer["id"], description="空压机停机")
    due = urgent["sla_due_at"]
    assert 3.9 * 3600 < (due - dt.datetime.now(UTC)).total_seconds() <= 4 * 3600
    late = create(w, "service_agent", "ticket", subject="超期", kind="complaint", customer=customer["id"],
                  description="交货延迟", sla_due_at=(dt.datetime.now(UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert any("complaint" in m for m in w.notified("service_manager"))
    w.run_schedules()
    assert get(w, "ticket", late)["state"] == "escalated"
    fire(w, "service_manager", "ticket", late, "take_over", assignee=w.uid("service_agent"))
    resolved = fire(w, "service_agent", "ticket", late, "resolve", resolution="已补发")
    assert resolved["resolved_at"] is not None and resolved["sla_met"] is False
    closed = fire(w, "service_agent", "ticket", late, "close")
    updated = w.service.update(w.as_("service_agent"), "ticket", late["id"], {"satisfaction": 4}, closed["version"])
    assert updated["satisfaction"] == 4
    with raises("ValidationFailed"):
        w.service.update(w.as_("service_agent"), "ticket", late["id"], {"resolved_at": "2020-01-01T00:00:00Z"},
                         updated["version"])


def test_knowledge_base_of_articles(w):
    article = create(w, "service_agent", "kb_article", title="冷干机排水阀清洗", category="troubleshooting",
                     body="拆下排水阀……", keywords="冷干机 排水", published=True)
    from engine.records.listing import ListQuery
    found = w.service.list(w.as_("sales_rep"), "kb_article", ListQuery(q="排水阀", limit=10)).data
    assert article["id"] in [a["id"] for a in found]


def test_roles_admin_sales_rep_sales_manager_marketing_service_agent_service_manager_finance(w):
    assert set(w.registry.roles) >= {"admin", "sales_rep", "sales_manager", "marketing", "service_agent",
                                     "service_manager", "finance"}
    rep, manager = w.as_("sales_rep"), w.as_("sales_manager")
    assert w.service.list(manager, "opportunity", _query()).total > w.service.list(rep, "opportunity", _query()).total
    assert "credit_limit" not in w.service.list(w.as_("marketing"), "customer", _query()).data[0]
    with raises("NotFound"):  # service agents do not see expense claims at all
        w.service.list(w.as_("service_agent"), "expense_claim", _query())


def test_pipeline_funnel_report(w):
    report = w.registry.reports["pipeline_by_stage"]
    assert report.chart == "funnel"
    rows = w.report("pipeline_by_stage")["rows"]
    assert {"prospecting", "proposal", "won"} <= {r["stage"] for r in rows}
    funnel = w.report("opportunity_funnel")["rows"]
    assert [r["state"] for r in funnel] == ["prospecting", "qualification", "proposal", "negotiation", "won"]


def test_win_rate_by_rep_report(w):
    rows = w.report("win_rate_by_owner")["rows"]
    assert len(rows) >= 2 and all(0 <= r["win_rate"] <= 1 for r in rows)
    assert all(r["won"] <= r["deals"] for r in rows)


def test_average_sales_cycle_report(w):
    rows = w.report("average_sales_cycle")["rows"]
    assert rows and all(r["shortest"] <= r["avg_days"] <= r["longest"] for r in rows)


def test_customer_tiers_and_value_concentration_report(w):
    tiers = {r["tier"]: r for r in w.report("value_by_tier")["rows"] if r["tier"]}
    assert tiers["a"]["per_customer"] > tiers["c"]["per_customer"]
    rows = w.report("customer_value_concentration")["rows"]
    top = [r for r in rows if r["m_score"] == 5]
    share = sum(r["monetary"] for r in top) / sum(r["monetary"] for r in rows)
    assert 0.2 <= len(top) / len(rows) <= 0.25 and share > 0.5  # the top fifth brings most of the money


def test_purchase_cycle_report(w):
    rows = w.report("purchase_cycle")["rows"]
    repeat = [r for r in rows if r["purchases"] >= 3]
    assert repeat and all(r["average_days"] > 0 and r["next_purchase"] for r in repeat)


def test_ticket_sla_compliance_report(w):
    rows = w.report("ticket_sla_compliance")["rows"]
    assert rows and all(0 <= r["compliance"] <= 1 for r in rows)
    total = sum(r["resolved"] for r in rows)
    assert 0.6 < sum(r["in_time"] for r in rows) / total < 1
