"""The manufacturing pack: one test per requirement of seed 004 (table 1, sections 5 and 6).

Every test works through the record service (as the API and the UI do) on a site made with
the pack, its sample data loaded, on SQLite and on PostgreSQL. docs/packs/manufacturing.md
maps each requirement to what meets it and names these tests.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from packworld import (REPO, UTC, assert_demo_pages_render, assert_reports_and_dashboards_run, create,
                       fire, get, raises, seed_counts, today, world_fixture)


w = world_fixture("manufacturing")


def soon(hours=48):
    return (dt.datetime.now(UTC) + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def a_customer(w, name, **extra):
    """A customer owned by the sales rep (who reads only own customers)."""
    return create(w, "admin", "customer", name=name, owner=w.uid("sales_rep"), **extra)


def product(w, name):
    page = w.service.list(w.as_("admin"), "product", _query(name=name))
    return page.data[0]


def _query(**filters):
    from engine.records.listing import ListQuery
    return ListQuery(filters=[(k, k, "in", str(v)) for k, v in filters.items()], limit=50)


# ---------------------------------------------------------------- the pack and its data

def test_pack_validates():
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "validate", "--pack",
                             "manufacturing"], capture_output=True, text=True, cwd=REPO,
                            timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")


def test_seed_loads_all_sample_data_without_a_rejected_row(w):
    expected = seed_counts(REPO / "metadata" / "seed",
                           REPO / "industry_packs" / "manufacturing" / "seed")
    loaded = dict(line.split(": ") for line in w.seed_lines)
    assert {k: v for k, v in loaded.items()} == {k: f"{n} records" for k, n in expected.items()}
    # large enough for meaningful dashboards
    assert expected["customer"] >= 200 and expected["opportunity"] >= 300
    assert expected["activity"] >= 500


def test_every_report_and_dashboard_of_the_pack_runs_on_the_sample_data(w):
    assert_reports_and_dashboards_run(w)


# ---------------------------------------------------------------- table 1: machinery

def test_sales_funnel_management(w):
    rows = {r["stage"]: r for r in w.report("pipeline_by_stage")["rows"]}
    assert {"prospecting", "qualification", "proposal", "negotiation", "won"} <= set(rows)
    assert w.registry.reports["pipeline_by_stage"].chart == "funnel"
    assert rows["negotiation"]["expected"] == pytest.approx(rows["negotiation"]["amount"] * 0.8, rel=0.05)


def test_sales_funnel_with_technical_presales_support_request(w):
    customer = a_customer(w, "测试重机客户A")
    deal = create(w, "sales_rep", "opportunity", name="盾构配套设备", customer=customer["id"],
                  amount=2000000, needs_tech_support=True)
    request = create(w, "sales_rep", "presales_request", subject="现场勘察", kind="site_survey",
                     opportunity=deal["id"], requirement="勘察隧道工况，提出设备配置")
    assert any("technical support" in m for m in w.notified("presales_engineer"))
    with raises("Forbidden"):
        fire(w, "sales_rep", "presales_request", request, "assign", engineer=w.uid("presales_engineer"))
    fire(w, "presales_engineer", "presales_request", request, "assign", engineer=w.uid("presales_engineer"))
    fire(w, "presales_engineer", "presales_request", request, "start")
    with raises("ValidationFailed"):
        fire(w, "presales_engineer", "presales_request", request, "finish")
    done = fire(w, "presales_engineer", "presales_request", request, "finish",
                result="方案已提交", hours=12)
    assert done["state"] == "done"
    assert get(w, "opportunity", deal)["presales_requests"] == 1


def test_accurate_quotation_and_capacity_forecast(w):
    row = w.report("capacity_outlook")["rows"][0]
    assert row["capacity"] > 0 and 0 < row["utilisation"] < 5


def test_product_knowledge_base(w):
    article = create(w, "service_manager", "kb_article", title="XE215 动臂油缸更换", category="maintenance",
                     models="XE215", body="步骤……", published=True, audience=["internal", "dealer"])
    found = w.service.list(w.as_("dealer"), "kb_article", _query_q("XE215"))
    assert article["id"] in [r["id"] for r in found.data]
    assert {"spec_sheet", "manual", "fault_code"} <= set(
        w.registry.entities["kb_article"].fields["category"].option_values)


def _query_q(text):
    from engine.records.listing import ListQuery
    return ListQuery(q=text, limit=100)


def test_dealer_network_with_authorised_service_and_4s_dealers(w):
    assert w.count("customer", dealer_level="dealer_4s") >= 5
    assert w.count("customer", authorised_service="true") >= 10
    dealer = a_customer(w, "测试4S汽车销售服务有限公司", customer_kind="dealer", dealer_level="dealer_4s",
                        authorised_service=True, dealer_territory="测试市")
    agreement = create(w, "channel_manager", "dealer_agreement", dealer=dealer["id"], kind="dealer_4s",
                       territory="测试市", start_date=str(today()), end_date=str(today() + dt.timedelta(days=365)),
                       authorised_service=["maintenance", "repair"], included_visits=4)
    fire(w, "channel_manager", "dealer_agreement", agreement, "submit")
    with raises("Forbidden"):
        fire(w, "channel_manager", "dealer_agreement", agreement, "approve")
    assert fire(w, "sales_manager", "dealer_agreement", agreement, "approve")["state"] == "active"
    # the dealer's own login sees its own customers and work orders, nobody else's
    mine = create(w, "dealer", "customer", name="经销商自有客户")
    assert w.service.list(w.as_("dealer"), "customer", _query()).total == 1
    assert mine["owner"] == w.uid("dealer")


def test_after_sales_service_and_complaint_management(w):
    rows = {r["kind"]: r for r in w.report("work_orders_by_kind")["rows"]}
    assert {"installation", "maintenance", "repair"} <= set(rows)
    assert w.report("complaints_by_category")["rows"]


# ---------------------------------------------------------------- table 1: chemicals

def test_unified_customer_view(w):
    customer = a_customer(w, "统一视图化工有限公司", customer_kind="enterprise")
    create(w, "admin", "contact", customer=customer["id"], name="视图联系人")
    create(w, "admin", "opportunity", name="树脂年度采购", customer=customer["id"], amount=500000)
    create(w, "admin", "sample_request", customer=customer["id"], product=product(w, "环氧树脂 E-51")["id"],
           quantity=5, purpose="evaluation", ship_to="上海")
    record = get(w, "customer", customer)
    assert (record["contacts_count"], record["open_opportunities"], record["sample_requests"]) == (1, 1, 1)
    assert record["pipeline_amount"] == 500000
    sections = [s.fields for s in w.registry.entities["customer"].form_sections]
    assert any("open_work_orders" in f and "total_paid" in f for f in sections)


def test_many_sales_organisations_are_managed_centrally(w):
    rows = w.report("sales_by_branch")["rows"]
    assert len([r for r in rows if r["branch"] is not None]) >= 6
    assert w.count("branch_office") >= 10


def test_sample_request_goes_through_approval_shipment_and_feedback(w):
    customer = a_customer(w, "样品测试涂料有限公司")
    sample = create(w, "sales_rep", "sample_request", customer=customer["id"],
                    product=product(w, "重防腐环氧涂料")["id"], quantity=20, unit="kg",
                    purpose="evaluation", ship_to="苏州工业园区", free_of_charge=True)
    assert sample["state"] == "draft" and sample["number"].startswith("SP-")
    fire(w, "sales_rep", "sample_request", sample, "submit")
    assert any("sample request" in m for m in w.notified("sales_manager"))
    with raises("Forbidden"):
        fire(w, "sales_rep", "sample_request", sample, "approve")
    approved = fire(w, "sales_manager", "sample_request", sample, "approve")
    assert approved["approved_by"] == w.uid("sales_manager")
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "sample_request", sample, "ship")
    shipped = fire(w, "sales_rep", "sample_request", sample, "ship", carrier="顺丰速运", tracking_no="SF123456789")
    assert shipped["state"] == "shipped" and shipped["shipped_on"] == today()
    note = w.service.list(w.as_("admin"), "shipping_note", _query(sample_request=sample["id"])).data
    assert len(note) == 1 and note[0]["kind"] == "sample" and note[0]["tracking_no"] == "SF123456789"
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "sample_request", sample, "record_feedback")
    fed = fire(w, "sales_rep", "sample_request", sample, "record_feedback", test_result="passed",
               feedback="附着力合格")
    assert fed["state"] == "feedback_received" and fed["feedback_on"] == today()
    assert fire(w, "sales_rep", "sample_request", sample, "close")["state"] == "closed"
    assert get(w, "customer", customer)["sample_requests"] == 1


def test_product_recall_lists_affected_customers_orders_and_batches(w):
    from engine.records.listing import ListQuery
    batch = "B9912-77"
    customer = a_customer(w, "召回受影响客户有限公司")
    order = create(w, "admin", "order", customer=customer["id"], batch_nos=batch,
                   lines=[{"product": product(w, "环氧树脂 E-51")["id"], "quantity": 3, "unit_price": 21000}])
    found = w.service.list(w.as_("quality_manager"), "order", ListQuery(q=batch, limit=10)).data
    assert [o["id"] for o in found] == [order["id"]]
    recall = create(w, "quality_manager", "product_recall", title="E-51 批次召回测试",
                    product=product(w, "环氧树脂 E-51")["id"], batches=batch, severity="class3",
                    remedy="replace", reason="粘度超标",
                    items=[{"customer": customer["id"], "order": order["id"], "batch_no": batch, "quantity": 3}])
    assert recall["affected_customers"] == 1 and recall["affected_quantity"] == 3
    with raises("Forbidden"):
        fire(w, "sales_manager", "product_recall", recall, "announce")
    announced = fire(w, "quality_manager", "product_recall", recall, "announce")
    assert announced["announced_on"] == today()
    assert any("recall" in m for m in w.notified("service_manager"))
    fire(w, "quality_manager", "product_recall", recall, "start")
    with raises("ValidationFailed"):
        fire(w, "quality_manager", "product_recall", recall, "close")
    current = get(w, "product_recall", recall)
    line = {k: current["items"][0][k] for k in ("id", "customer", "order", "batch_no", "quantity")}
    w.service.update(w.as_("quality_manager"), "product_recall", recall["id"],
                     {"items": [dict(line, status="replaced")]}, current["version"])
    assert fire(w, "quality_manager", "product_recall", recall, "close")["state"] == "closed"


def test_special_price_request_needs_manager_and_finance_approval_above_twenty_percent(w):
    customer = a_customer(w, "特价测试钢构有限公司")
    item = product(w, "挖掘机 XE215")  # list price 780000
    small = create(w, "sales_rep", "special_price_request", customer=customer["id"], product=item["id"],
                   quantity=2, requested_price=702000, reason="竞品压价")
    assert small["list_price"] == 780000 and small["discount"] == pytest.approx(10.0)
    fire(w, "sales_rep", "special_price_request", small, "submit")
    assert fire(w, "sales_manager", "special_price_request", small, "manager_approve")["approved_price"] == 702000
    deep = create(w, "sales_rep", "special_price_request", customer=customer["id"], product=item["id"],
                  quantity=1, requested_price=546000, reason="战略首单")
    assert deep["discount"] == pytest.approx(30.0)
    fire(w, "sales_rep", "special_price_request", deep, "submit")
    with raises("ValidationFailed"):
        fire(w, "sales_manager", "special_price_request", deep, "manager_approve")
    fire(w, "sales_manager", "special_price_request", deep, "manager_escalate")
    assert any("20%" in m for m in w.notified("finance"))
    with raises("Forbidden"):
        fire(w, "sales_manager", "special_price_request", deep, "finance_approve")
    assert fire(w, "finance", "special_price_request", deep, "finance_approve")["state"] == "approved"


# ---------------------------------------------------------------- table 1: steel

def test_sales_driven_production_forecast_and_capacity_outlook(w):
    rows = w.report("sales_forecast")["rows"]
    ahead = [r for r in rows if r["forecast"] is not None]
    assert len(ahead) == 6 and all(r["forecast"] >= 0 for r in ahead)
    assert sum(1 for r in rows if r["actual"]) >= 20  # built from two years of order history
    forecast = create(w, "production_planner", "production_forecast", name="测试 QY50 2031-01",
                      product=product(w, "汽车起重机 QY50")["id"], month="2031-01-01",
                      last_year_qty=8, orders_in_hand=9, forecast_qty=14, capacity_qty=12)
    assert forecast["planned_qty"] == 14 and forecast["over_capacity"] is True
    assert float(forecast["utilisation"]) == pytest.approx(116.7, abs=0.1)
    assert float(forecast["growth"]) == pytest.approx(75.0)
    with raises("Forbidden"):
        fire(w, "sales_manager", "production_forecast", forecast, "confirm")
    assert fire(w, "production_planner", "production_forecast", forecast, "confirm")["state"] == "confirmed"
    months = [r["month:month"] for r in w.report("capacity_outlook")["rows"]]
    assert "2031-01" in months


def test_own_channel_intermediaries_and_direct_sales_are_integrated(w):
    rows = {r["sales_channel"]: r for r in w.report("sales_by_channel")["rows"]}
    assert {"direct", "dealer", "own_outlet"} <= set(rows)


# ---------------------------------------------------------------- table 1: automotive

def test_multiple_touchpoints_are_integrated(w):
    customer = a_customer(w, "多渠道接触测试客户")
    for channel in ("phone", "wechat", "call_center", "dealer"):
        create(w, "sales_rep", "activity", subject=f"接触 {channel}", kind="call", channel=channel,
               customer=customer["id"])
    assert get(w, "customer", customer)["activities_count"] == 4


def test_dealer_channels_such_as_4s_dealerships(w):
    rows = w.report("dealer_performance")["rows"]
    assert len(rows) >= 10 and rows[0]["amount"] >= rows[-1]["amount"]
    assert w.count("dealer_agreement", kind="dealer_4s") >= 5


def test_call_centre_logs_calls_and_dispatches_them_to_branch_offices(w):
    customer = a_customer(w, "呼叫中心测试客户")
    branch = w.service.list(w.as_("admin"), "branch_office", _query(code="GZ")).data[0]
    call = create(w, "call_center_agent", "service_call", caller_name="刘师傅", phone="13800001111",
                  customer=customer["id"], category="repair", priority="urgent",
                  description="挖掘机无法启动", cti_call_id="CTI-TEST-1")
    assert any("stopped" in m for m in w.notified("service_manager"))
    with raises("ValidationFailed"):
        fire(w, "call_center_agent", "service_call", call, "dispatch")
    assert fire(w, "call_center_agent", "service_call", call, "dispatch", branch=branch["id"])["state"] == "dispatched"
    assert get(w, "service_call", call)["work_orders"] == 1
    order = w.service.list(w.as_("admin"), "work_order", _query(service_call=call["id"])).data[0]
    assert (order["branch"], order["kind"], order["priority"]) == (branch["id"], "repair", "urgent")
    question = create(w, "call_center_agent", "service_call", caller_name="张工", phone="13800002222",
                      category="inquiry", description="保养周期？")
    assert fire(w, "call_center_agent", "service_call", question, "answer",
                answer="每500小时")["state"] == "answered"
    angry = create(w, "call_center_agent", "service_call", caller_name="王总", phone="13800003333",
                   customer=customer["id"], category="complaint", description="维修不及时")
    fire(w, "call_center_agent", "service_call", angry, "to_complaint")
    tickets = w.service.list(w.as_("admin"), "ticket", _query(customer=customer["id"])).data
    assert [t["kind"] for t in tickets] == ["complaint"]


def test_service_management_with_repairs_and_scheduled_maintenance(w):
    assert w.count("service_contract", state="active") >= 10
    assert w.count("work_order", kind="maintenance") >= 50


# ---------------------------------------------------------------- table 1: electronics

def test_many_customers_with_tiered_management(w):
    rows = {r["tier"]: r for r in w.report("customers_by_tier")["rows"] if r["tier"]}
    assert set(rows) == {"a", "b", "c"} and sum(r["customers"] for r in rows.values()) >= 250


def test_email_exchanges_are_tracked_as_activities(w):
    customer = a_customer(w, "邮件跟踪测试客户")
    mail = dict(subject="RE: 报价确认", kind="email", customer=customer["id"], email_from="a@b.cn",
                email_to="c@d.cn", email_message_id="<test-1@mail>", done=True)
    create(w, "sales_rep", "activity", **mail)
    with raises("ValidationFailed"):
        create(w, "sales_rep", "activity", **mail)  # the same mail archived twice


def test_order_entry_shows_erp_stock_fed_by_import(w):
    from engine.records.access import SYSTEM
    from engine.records.transfer import import_rows
    item = product(w, "光伏逆变器 50kW")
    # the ERP's nightly file: product code, stock on hand, available to promise
    result = import_rows(w.service, SYSTEM, "product", ["id", "erp_stock", "erp_available", "erp_synced_at"],
                         [(2, [str(item["id"]), "40", "12", "2026-11-20T02:00:00Z"])])
    assert (result.updated, result.rejected) == (1, [])
    order = create(w, "sales_rep", "order", customer=a_customer(w, "ERP库存测试客户")["id"],
                   lines=[{"product": item["id"], "quantity": 20, "unit_price": 18000},
                          {"product": item["id"], "quantity": 5, "unit_price": 18000}])
    assert [(l["erp_available"], l["stock_short"]) for l in order["lines"]] == [(12, True), (12, False)]


def test_serial_number_management(w):
    customer = a_customer(w, "序列号测试客户")
    unit = create(w, "service_agent", "equipment", serial_no="XE215-2031-9001",
                  product=product(w, "挖掘机 XE215")["id"], customer=customer["id"])
    with raises("ValidationFailed"):
        create(w, "service_agent", "equipment", serial_no="XE215-2031-9001",
               product=product(w, "挖掘机 XE215")["id"], customer=customer["id"])
    with raises("ValidationFailed"):
        create(w, "service_agent", "equipment", serial_no="lower case", product=product(w, "挖掘机 XE215")["id"],
               customer=customer["id"])
    create(w, "service_agent", "fault_report", equipment=unit["id"], customer=customer["id"],
           occurred_on=str(today()), category="hydraulic", symptom="动臂下沉")
    assert get(w, "equipment", unit)["faults"] == 1
    assert get(w, "customer", customer)["installed_units"] == 1


def test_samples_spares_and_parts_are_managed(w):
    assert w.count("product", product_type="spare_part") >= 7
    assert w.count("sample_request") >= 40 and w.count("part_request") >= 30


# ---------------------------------------------------------------- section 5: marketing

def test_annual_marketing_plan_with_campaign_approval_and_budget_control(w):
    plan = create(w, "marketing_manager", "marketing_plan", name="测试年度计划", year=2031,
                  total_budget=500000, objectives="提升认知")
    campaign = create(w, "marketing", "campaign", name="测试计划内活动", kind="seminar", marketing_plan=plan["id"],
                      budget=100000, start_date=str(today()), end_date=str(today() + dt.timedelta(days=2)),
                      plan="邀约、演示、回访")
    with raises("ValidationFailed"):  # the plan is not approved yet
        fire(w, "marketing", "campaign", campaign, "submit")
    fire(w, "marketing_manager", "marketing_plan", plan, "submit")
    with raises("Forbidden"):
        fire(w, "marketing_manager", "marketing_plan", plan, "approve")
    assert fire(w, "sales_manager", "marketing_plan", plan, "approve")["approved_by"] == w.uid("sales_manager")
    assert get(w, "marketing_plan", plan)["unallocated"] == 400000
    fire(w, "marketing", "campaign", campaign, "submit")
    fire(w, "marketing_manager", "campaign", campaign, "approve")
    fire(w, "marketing", "campaign", campaign, "start")
    claim = create(w, "marketing", "expense_claim", campaign=campaign["id"], category="venue",
                   amount=90000, description="场地")
    fire(w, "marketing", "expense_claim", claim, "submit")
    fire(w, "finance", "expense_claim", claim, "approve")
    with raises("ValidationFailed"):  # a claim beyond the budget must say why
        create(w, "marketing", "expense_claim", campaign=campaign["id"], category="catering",
               amount=20000, description="餐饮")
    over = create(w, "marketing", "expense_claim", campaign=campaign["id"], category="catering",
                  amount=20000, description="餐饮", over_budget_reason="参会人数超出预期")
    fire(w, "marketing", "expense_claim", over, "submit")
    with raises("ValidationFailed"):  # budget control: finance cannot take it over budget
        fire(w, "finance", "expense_claim", over, "approve")
    fire(w, "sales_manager", "expense_claim", over, "approve_over_budget")
    record = get(w, "campaign", campaign)
    assert record["actual_cost"] == 110000 and record["over_budget"] is True
    rows = {r["name"]: r for r in w.report("marketing_plan_execution")["rows"]}
    assert rows["测试年度计划"]["spent"] == 110000


def test_surveys_and_market_research(w):
    survey = create(w, "marketing", "survey", title="测试调研", purpose="product_research",
                    questions="1. 您最关注什么？")
    fire(w, "marketing", "survey", survey, "open")
    for score, intent in ((5, True), (3, False), (4, True)):
        create(w, "marketing", "survey_response", survey=survey["id"], respondent=f"受访者{score}",
               score=score, purchase_intent=intent, aware_of_brand=True)
    record = get(w, "survey", survey)
    assert (record["responses"], record["would_buy"], record["average_score"]) == (3, 2, 4)
    with raises("ValidationFailed"):
        fire(w, "marketing", "survey", survey, "close")
    assert fire(w, "marketing", "survey", survey, "close", findings="关注油耗")["state"] == "closed"


def test_campaign_is_evaluated_against_later_orders(w):
    start, end = today() - dt.timedelta(days=200), today() - dt.timedelta(days=190)
    from engine.records.access import SYSTEM
    campaign = w.service.create(SYSTEM, "campaign", dict(  # a campaign that ended half a year ago
        name="评估测试活动", kind="exhibition", budget=50000, start_date=str(start), end_date=str(end),
        status="completed", brand_awareness_before=20, brand_awareness_after=31,
        regional_order_growth=12.5), allow_state=True)
    customer = a_customer(w, "活动评估测试客户")
    item = product(w, "装载机 LW500")["id"]
    for days, price in ((30, 100000), (150, 70000)):  # 30 days after the end counts, 150 does not
        create(w, "admin", "order", customer=customer["id"], campaign=campaign["id"],
               order_date=str(end + dt.timedelta(days=days)),
               lines=[{"product": item, "quantity": 1, "unit_price": price}])
    row = next(r for r in w.report("campaign_evaluation")["rows"] if r["name"] == "评估测试活动")
    assert row["orders_90d"] == 100000
    assert (row["awareness_before"], row["awareness_after"], row["growth"]) == (20, 31, 12.5)


def test_market_information_becomes_lead_opportunity_and_order(w):
    customer = a_customer(w, "市场信息测试热电有限公司", customer_kind="utility")
    info = create(w, "marketing", "market_info", title="热电厂扩建项目", kind="project", source="design_institute",
                  company=customer["name"], customer=customer["id"], estimated_amount=3000000,
                  expected_purchase=str(today() + dt.timedelta(days=90)))
    fire(w, "marketing", "market_info", info, "assign", project_lead=w.uid("key_account_manager"))
    assert any("project information" in m for m in w.notified("key_account_manager"))
    converted = fire(w, "key_account_manager", "market_info", info, "to_opportunity")
    deal = w.service.get(w.as_("admin"), "opportunity", converted["opportunity"])
    assert (deal["customer"], deal["amount"], deal["sales_mode"]) == (customer["id"], 3000000, "project")
    lead_info = create(w, "marketing", "market_info", title="新建厂房", kind="expansion", source="media",
                       company="尚无档案的新公司", phone="13900004444")
    fire(w, "marketing", "market_info", lead_info, "assign", project_lead=w.uid("sales_rep"))
    lead = w.service.get(w.as_("admin"), "lead", fire(w, "sales_rep", "market_info", lead_info, "to_lead")["lead"])
    assert (lead["company"], lead["source"]) == ("尚无档案的新公司", "market_info")
    for step in ("qualify", "propose", "negotiate", "win"):
        w.service.transition(w.as_("admin"), "opportunity", deal["id"], step,
                             {"close_date": str(today() + dt.timedelta(days=30))} if step == "propose" else None)
    order = create(w, "key_account_manager", "order", customer=customer["id"], opportunity=deal["id"],
                   sales_channel="project",
                   lines=[{"product": product(w, "箱式变电站 YBM-630")["id"], "quantity": 9, "unit_price": 320000}])
    assert order["opportunity"] == deal["id"] and order["total"] == 2880000
    rows = {r["kind"]: r for r in w.report("market_info_conversion")["rows"]}
    assert rows["project"]["won"] >= 1 and rows["expansion"]["to_leads"] >= 1


# ---------------------------------------------------------------- section 5: sales

def test_direct_and_channel_sales_on_long_cycles_with_tenders(w):
    customer = a_customer(w, "长周期测试矿业有限公司")
    with raises("ValidationFailed"):  # a channel sale names its dealer
        create(w, "sales_rep", "opportunity", name="渠道单", customer=customer["id"], sales_mode="channel")
    dealer = a_customer(w, "长周期测试经销商", customer_kind="dealer")
    deal = create(w, "sales_rep", "opportunity", name="渠道单", customer=customer["id"], sales_mode="channel",
                  dealer=dealer["id"], opened_on=str(today() - dt.timedelta(days=240)),
                  close_date=str(today() + dt.timedelta(days=60)))
    assert deal["cycle_days"] == 300
    rows = {r["sales_mode"]: r for r in w.report("opportunities_by_mode")["rows"]}
    assert {"direct", "channel", "project", "retail"} <= set(rows)
    assert rows["project"]["cycle"] > rows["direct"]["cycle"]  # projects take longer


def test_tender_goes_from_registration_to_bid_and_result(w):
    customer = a_customer(w, "招标测试供电公司", customer_kind="utility")
    tender = create(w, "key_account_manager", "tender", name="配网设备集采", tender_no="ZB-TEST-001",
                    customer=customer["id"], deadline=soon(24 * 10), budget=5000000, bid_bond=100000)
    fire(w, "key_account_manager", "tender", tender, "prepare")
    with raises("ValidationFailed"):
        fire(w, "key_account_manager", "tender", tender, "submit")
    fire(w, "key_account_manager", "tender", tender, "submit", bid_amount=4800000)
    won = fire(w, "key_account_manager", "tender", tender, "win")
    assert (won["state"], won["winning_bid"]) == ("won", 4800000)
    with raises("ValidationFailed"):
        create(w, "key_account_manager", "tender", name="重复", tender_no="ZB-TEST-001",
               customer=customer["id"], deadline=soon())
    assert {r["state"] for r in w.report("tender_results")["rows"]} >= {"won", "lost"}


def test_company_news_reaches_every_salesperson(w):
    bulletin = create(w, "sales_manager", "bulletin", title="调价通知测试", category="price",
                      audience=["sales", "dealers"], body="自下月起上调3%")
    with raises("Forbidden"):
        fire(w, "sales_rep", "bulletin", bulletin, "publish")
    assert fire(w, "sales_manager", "bulletin", bulletin, "publish")["published_on"] == today()
    assert any("bulletin" in m for m in w.notified("sales_rep"))
    assert any("bulletin" in m for m in w.notified("dealer"))


def test_annual_sales_plan_is_broken_down_by_department_and_rep_and_adjusted(w):
    plan = create(w, "sales_manager", "sales_plan", name="测试2031销售计划", year=2031, company_target=100000000)
    target = create(w, "sales_manager", "sales_target", name="2031 测试 渠道 sales_rep", plan=plan["id"], year=2031,
                    department="channel", rep=w.uid("sales_rep"), target=20000000, owner=w.uid("sales_rep"))
    with raises("ValidationFailed"):  # the plan is not issued yet
        fire(w, "sales_manager", "sales_target", target, "activate")
    fire(w, "sales_manager", "sales_plan", plan, "approve")
    active = fire(w, "sales_manager", "sales_target", target, "activate")
    assert active["original_target"] == 20000000
    assert get(w, "sales_plan", plan)["unallocated"] == 80000000
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "sales_target", target, "request_adjustment")
    fire(w, "sales_rep", "sales_target", target, "request_adjustment", new_target=16000000,
         adjustment_reason="区域市场下滑")
    assert any("adjustment" in m for m in w.notified("sales_manager"))
    with raises("Forbidden"):
        fire(w, "sales_rep", "sales_target", target, "approve_adjustment")
    adjusted = fire(w, "sales_manager", "sales_target", target, "approve_adjustment")
    assert (adjusted["target"], adjusted["original_target"], adjusted["adjustments"]) == (16000000, 20000000, 1)
    with raises("ValidationFailed"):
        w.service.update(w.as_("sales_manager"), "sales_target", target["id"],
                         {"q1_share": 50}, adjusted["version"])
    create(w, "sales_rep", "order", customer=a_customer(w, "目标测试客户")["id"], sales_target=target["id"],
           lines=[{"product": product(w, "挖掘机 XE215")["id"], "quantity": 4, "unit_price": 800000}])
    rows = {r["department"]: r for r in w.report("targets_by_department")["rows"]}
    assert rows["channel"]["achieved"] >= 3200000
    assert w.report("sales_target_achievement")["rows"]


def test_standard_quote_is_issued_centrally_by_the_pricing_desk(w):
    customer = a_customer(w, "统一报价测试客户")
    quote = create(w, "sales_rep", "quote", customer=customer["id"],
                   lines=[{"product": product(w, "汽车起重机 QY25")["id"], "quantity": 1, "unit_price": 1150000,
                           "discount": 5}])
    assert quote["payment_terms"] and quote["warranty_terms"]  # the company's standard terms
    fire(w, "sales_rep", "quote", quote, "confirm")
    with raises("Forbidden"):
        fire(w, "sales_rep", "quote", quote, "issue")
    with raises("ValidationFailed"):
        fire(w, "pricing_admin", "quote", quote, "issue")
    issued = fire(w, "pricing_admin", "quote", quote, "issue", valid_until=str(today() + dt.timedelta(days=30)),
                  delivery_terms="合同签订后30天")
    assert (issued["state"], issued["issued_by"], issued["issued_on"]) == ("issued", w.uid("pricing_admin"), today())
    assert fire(w, "sales_rep", "quote", quote, "send")["state"] == "sent"


# ---------------------------------------------------------------- section 5: service

def _tech(w, level):
    return next(t for t in w.service.list(w.as_("admin"), "technician", _query(skill_level=level, active="true")).data)


def test_work_order_is_dispatched_by_skill_level_escalated_and_costed(w):
    customer = a_customer(w, "派工测试客户")
    order = create(w, "service_agent", "work_order", title="回转马达更换", kind="repair", customer=customer["id"],
                   required_level=3, priority="high")
    with raises("ValidationFailed"):  # a junior engineer cannot take a level-3 job
        fire(w, "service_manager", "work_order", order, "dispatch", technician=_tech(w, 1)["id"],
             scheduled_at=soon(4))
    expert = _tech(w, 3)
    dispatched = fire(w, "service_manager", "work_order", order, "dispatch", technician=expert["id"], scheduled_at=soon(4))
    assert dispatched["state"] == "dispatched"
    assert get(w, "technician", expert)["open_orders"] >= 1
    fire(w, "technician", "work_order", order, "start")
    fire(w, "technician", "work_order", order, "escalate")
    assert any("higher level" in m for m in w.notified("service_manager"))
    fire(w, "service_manager", "work_order", order, "reassign", technician=expert["id"])
    fire(w, "technician", "work_order", order, "start")
    done = fire(w, "technician", "work_order", order, "complete", work_done="更换回转马达", labour_hours=6,
                labour_cost=3600, parts_cost=32000, travel_cost=800)
    assert done["total_cost"] == 36400 and done["escalations"] == 1 and done["completed_at"] is not None
    with raises("ValidationFailed"):
        fire(w, "technician", "work_order", order, "close")
    assert fire(w, "technician", "work_order", order, "close", satisfaction=5)["state"] == "closed"
    rows = {r["kind"]: r for r in w.report("service_cost")["rows"]}
    assert rows["repair"]["total"] >= 36400


def test_overdue_work_orders_are_escalated_by_automation(w):
    customer = a_customer(w, "超期工单测试客户")
    order = create(w, "service_agent", "work_order", title="超期测试", kind="repair", customer=customer["id"],
                   due_at=(dt.datetime.now(UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    fire(w, "service_manager", "work_order", order, "dispatch", technician=_tech(w, 1)["id"], scheduled_at=soon(-3))
    w.run_schedules()
    record = get(w, "work_order", order)
    assert (record["state"], record["priority"]) == ("escalated", "urgent")
    assert any("passed its due time" in m for m in w.notified("service_manager"))


def test_maintenance_contract_counts_included_visits_and_reminds(w):
    customer = a_customer(w, "维保合同测试客户")
    contract = create(w, "service_manager", "service_contract", customer=customer["id"], level="standard",
                      start_date=str(today() - dt.timedelta(days=100)), end_date=str(today() + dt.timedelta(days=265)),
                      fee=24000, included_visits=4, next_visit_on=str(today() + dt.timedelta(days=7)),
                      visits=[{"planned_on": str(today() - dt.timedelta(days=10)), "done": True},
                              {"planned_on": str(today() + dt.timedelta(days=7))}])
    assert (contract["visits_done"], contract["visits_left"]) == (1, 3)
    fire(w, "service_manager", "service_contract", contract, "activate")
    w.run_schedules()
    orders = w.service.list(w.as_("admin"), "work_order", _query(service_contract=contract["id"])).data
    assert [o["kind"] for o in orders] == ["maintenance"]
    assert any("7 days" in m for m in w.notified("service_manager"))


def test_spare_part_requests_fault_reports_parts_transfers_and_shipping_notes(w):
    customer = a_customer(w, "备件单据测试客户")
    unit = create(w, "service_agent", "equipment", serial_no="LW500-2031-0001", customer=customer["id"],
                  product=product(w, "装载机 LW500")["id"])
    fault = create(w, "technician", "fault_report", equipment=unit["id"], customer=customer["id"],
                   occurred_on=str(today()), category="hydraulic", fault_code="E231", symptom="液压油温高")
    assert fault["number"].startswith("FR-")
    request = create(w, "technician", "part_request", customer=customer["id"], equipment=unit["id"],
                     part=product(w, "液压主泵")["id"], quantity=1, reason="failure", under_warranty=True,
                     unit_cost=86000)
    assert request["total_cost"] == 86000
    fire(w, "technician", "part_request", request, "submit")
    with raises("Forbidden"):
        fire(w, "technician", "part_request", request, "approve")
    fire(w, "service_manager", "part_request", request, "approve")
    fire(w, "service_agent", "part_request", request, "ship")
    with raises("ValidationFailed"):  # a warranty part is closed once the old part is back
        fire(w, "service_agent", "part_request", request, "close")
    branches = w.service.list(w.as_("admin"), "branch_office", _query()).data
    with raises("ValidationFailed"):
        create(w, "service_manager", "parts_transfer", from_branch=branches[0]["id"], to_branch=branches[0]["id"],
               lines=[{"part": product(w, "液压主泵")["id"], "quantity": 1}])
    transfer = create(w, "service_manager", "parts_transfer", from_branch=branches[0]["id"], to_branch=branches[1]["id"],
                      part_request=request["id"], lines=[{"part": product(w, "液压主泵")["id"], "quantity": 2}])
    assert transfer["items"] == 2
    for step in ("approve", "ship", "receive"):
        fire(w, "service_manager", "parts_transfer", transfer, step)
    note = create(w, "service_agent", "shipping_note", kind="spare_parts", customer=customer["id"],
                  part_request=request["id"])
    with raises("ValidationFailed"):
        fire(w, "service_agent", "shipping_note", note, "ship")
    assert fire(w, "service_agent", "shipping_note", note, "ship", carrier="顺丰", tracking_no="SF1")["shipped_on"] == today()


def test_dealer_service_requests_and_daily_service_plan(w):
    own = create(w, "dealer", "customer", name="经销商服务测试客户")
    order = create(w, "dealer", "work_order", title="经销商报修", kind="repair", customer=own["id"])
    assert w.service.list(w.as_("dealer"), "work_order", _query()).total >= 1
    others = w.service.list(w.as_("dealer"), "work_order", _query()).data
    assert all(o["owner"] == w.uid("dealer") for o in others)
    with raises("NotFound"):  # another customer's work order does not exist for the dealer
        w.service.get(w.as_("dealer"), "work_order", 1)
    assert order["state"] == "new"
    assert w.report("daily_dispatch")["rows"] and w.report("technician_workload")["rows"]


def test_service_reports_and_satisfaction_are_filed_on_completion(w):
    customer = a_customer(w, "服务报告测试客户")
    order = create(w, "service_agent", "work_order", title="安装调试", kind="installation", customer=customer["id"])
    fire(w, "service_manager", "work_order", order, "dispatch", technician=_tech(w, 1)["id"], scheduled_at=soon(2))
    fire(w, "technician", "work_order", order, "start")
    fire(w, "technician", "work_order", order, "complete", work_done="安装完成", labour_hours=4)
    report = w.service.list(w.as_("admin"), "service_report", _query(work_order=order["id"])).data[0]
    assert report["state"] == "draft" and report["summary"] == "安装完成"
    submitted = w.service.transition(w.as_("technician"), "service_report", report["id"], "submit",
                                     {"satisfaction": 4})
    assert (submitted["submitted_on"], submitted["lag_days"]) == (today(), 0)
    rows = w.report("service_quality")["rows"]
    assert rows and any(r["late"] > 0 for r in rows)  # the sample data shows reports filed weeks late


def test_authorised_dealers_do_included_maintenance_visits(w):
    rows = w.report("dealer_service")["rows"]
    assert rows and all(r["work_orders"] > 0 for r in rows)
    assert w.count("dealer_agreement", included_visits=4) + w.count("dealer_agreement", included_visits=6) > 0


# ---------------------------------------------------------------- section 6: electronics and electrical

def test_discount_policies_by_period_are_approved_and_ended(w):
    policy = create(w, "channel_manager", "discount_policy", name="测试节日折扣", channel="retail", discount=8,
                    valid_from=str(today() - dt.timedelta(days=20)), valid_to=str(today() - dt.timedelta(days=1)))
    fire(w, "channel_manager", "discount_policy", policy, "submit")
    fire(w, "sales_manager", "discount_policy", policy, "approve")
    w.run_schedules()
    assert get(w, "discount_policy", policy)["state"] == "ended"


def test_design_institutes_and_utilities_are_related_organisations(w):
    institute = a_customer(w, "测试电力设计院有限公司", customer_kind="design_institute")
    utility = a_customer(w, "国网测试供电公司", customer_kind="utility")
    owner = a_customer(w, "测试光伏电站业主")
    deal = create(w, "key_account_manager", "opportunity", name="光伏升压站", customer=owner["id"],
                  sales_mode="project", design_institute=institute["id"], utility=utility["id"])
    assert (deal["design_institute"], deal["utility"]) == (institute["id"], utility["id"])
    kinds = {r["customer_kind"] for r in w.report("customers_by_kind")["rows"]}
    assert {"design_institute", "utility", "dealer", "individual", "enterprise"} <= kinds


def test_individual_customers_besides_companies(w):
    with raises("ValidationFailed"):
        a_customer(w, "李四（个人）", customer_kind="individual")
    with raises("ValidationFailed"):
        a_customer(w, "李四（个人）", customer_kind="individual", phone="13800005555", id_card_last4="12AB")
    person = a_customer(w, "李四（个人）", customer_kind="individual", phone="13800005555", id_card_last4="123X")
    assert person["customer_kind"] == "individual"
    assert w.count("customer", customer_kind="individual") >= 15


def test_customer_visits_are_managed(w):
    rows = {r["owner"]: r for r in w.report("activities_by_owner")["rows"]}
    assert sum(r["visits"] for r in rows.values()) >= 100


def test_installation_repair_and_complaint_records_with_escalation_and_overdue_handling(w):
    rows = {r["kind"]: r for r in w.report("work_orders_by_kind")["rows"]}
    assert rows["installation"]["work_orders"] > 0 and rows["repair"]["escalated"] > 0
    assert "overdue" in rows["repair"]


def test_dispatch_capacity_and_service_cost(w):
    tech = _tech(w, 2)
    assert tech["daily_capacity"] >= 1 and tech["load"] is not None
    assert all(r["total"] > 0 for r in w.report("service_cost")["rows"])


def test_complaints_are_categorised_with_root_cause(w):
    customer = a_customer(w, "投诉测试客户")
    ticket = create(w, "service_agent", "ticket", subject="油漆脱落", kind="complaint", customer=customer["id"],
                    description="新机油漆脱落", complaint_category="quality", responsible_dept="production")
    assert any("complaint" in m for m in w.notified("service_manager"))
    w.service.update(w.as_("quality_manager"), "ticket", ticket["id"],
                     {"root_cause": "喷涂前处理不到位", "corrective_action": "增加磷化检验"}, ticket["version"])
    rows = {r["complaint_category"]: r for r in w.report("complaints_by_category")["rows"]}
    assert rows["quality"]["complaints"] >= 1


def test_loss_reasons_are_a_pick_list(w):
    options = set(w.registry.entities["opportunity"].fields["loss_reason"].option_values)
    assert {"price", "competitor", "product_fit", "delivery", "relationship", "project_cancelled"} <= options
    rows = w.report("loss_reasons")["rows"]
    assert len(rows) >= 6


def test_roles_keep_each_department_to_its_own_records(w):
    # a technician never sees a customer's credit limit; a sales rep sees only own opportunities
    customer = w.service.list(w.as_("technician"), "customer", _query()).data[0]
    assert "credit_limit" not in customer
    rep = w.as_("sales_rep")
    assert all(o["owner"] == rep.user_id for o in w.service.list(rep, "opportunity", _query()).data)


def test_demo_site_pages_render_in_the_browser(w, monkeypatch):
    """What `crm demo --pack manufacturing` serves: every dashboard, list and a record page."""
    assert_demo_pages_render(w, monkeypatch)
