"""The pharma and medical-device pack: one test per requirement of seed 004 section 7.

Every test works through the record service (as the API and the UI do) on a site made with the
pack, its sample data loaded, on SQLite and on PostgreSQL. docs/packs/pharma.md maps each
requirement to what meets it and names these tests.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from packworld import (REPO, assert_demo_pages_render, assert_reports_and_dashboards_run, create, fire,
                       get, raises, seed_counts, today, update, world_fixture)


w = world_fixture("pharma")


def _query(**filters):
    from engine.records.listing import ListQuery
    return ListQuery(filters=[(k, k, "in", str(v)) for k, v in filters.items()], limit=200)


def find(w, entity, role="admin", **filters):
    return w.service.list(w.as_(role), entity, _query(**filters)).data


def one(w, entity, **filters):
    return find(w, entity, **filters)[0]


def day(offset: int) -> str:
    return str(today() + dt.timedelta(days=offset))


def line(w, code):
    return one(w, "product_line", code=code)


def product(w, code):
    return one(w, "product", code=code)


def a_hospital(w, name, grade="b"):
    return create(w, "commercial", "customer", name=name, customer_kind="hospital",
                  hospital_level="tertiary_a", hospital_grade=grade)


def a_distributor(w, name):
    return create(w, "commercial", "customer", name=name, customer_kind="distributor")


def a_physician(w, name, hospital, code, title="attending", grade=None, basis=None):
    return create(w, "commercial", "physician", name=name, hospital=hospital["id"],
                  product_line=line(w, code)["id"], title=title, grade=grade, grading_basis=basis)


def a_rep(w, username, role="med_rep"):
    existing = w.users.by_username(username)
    uid = existing or w.users.create(username, "pw", [role])
    return uid, w.users.caller(uid)


def cover(w, uid, hospital, code):
    return create(w, "commercial", "rep_coverage", rep=uid, hospital=hospital["id"],
                  product_line=line(w, code)["id"])


# ---------------------------------------------------------------- the pack and its data

def test_pack_validates():
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "validate", "--pack", "pharma"],
                            capture_output=True, text=True, cwd=REPO, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")


def test_seed_loads_all_sample_data_without_a_rejected_row(w):
    expected = seed_counts(REPO / "metadata" / "seed", REPO / "industry_packs" / "pharma" / "seed")
    loaded = dict(line.split(": ") for line in w.seed_lines)
    assert loaded == {k: f"{n} records" for k, n in expected.items()}
    pack = seed_counts(REPO / "industry_packs" / "pharma" / "seed")
    hospitals = w.count("customer", customer_kind="hospital")
    assert hospitals >= 100 and pack["physician"] >= 200 and pack["visit"] >= 200
    assert pack["channel_order"] >= 100 and pack["campaign"] >= 10


def test_every_report_and_dashboard_of_the_pack_runs_on_the_sample_data(w):
    assert_reports_and_dashboards_run(w)


# ---------------------------------------------------------------- marketing

def test_yearly_marketing_plan_with_campaign_budgets(w):
    plan = create(w, "marketing_manager", "marketing_plan", name="测试年度市场计划", year=2027,
                  total_budget=500000)
    campaign = create(w, "marketing_manager", "campaign", name="测试计划内推广会", kind="seminar",
                      marketing_plan=plan["id"], budget=200000, start_date=day(30), end_date=day(31))
    with raises("ValidationFailed"):  # the plan is not approved yet
        fire(w, "marketing_manager", "campaign", campaign, "submit")
    fire(w, "marketing_manager", "marketing_plan", plan, "submit")
    with raises("Forbidden"):
        fire(w, "marketing", "marketing_plan", plan, "approve")
    approved = fire(w, "marketing_manager", "marketing_plan", plan, "approve")
    assert approved["state"] == "approved" and approved["planned_budget"] == 200000
    assert approved["unallocated"] == 300000
    assert fire(w, "marketing_manager", "campaign", campaign, "submit")["status"] == "pending_approval"
    over = create(w, "marketing_manager", "campaign", name="测试超预算推广会", kind="seminar",
                  marketing_plan=plan["id"], budget=400000, start_date=day(40), end_date=day(41))
    assert get(w, "marketing_plan", plan)["unallocated"] == -100000
    with raises("ValidationFailed"):  # the campaigns' budgets may not exceed the plan
        fire(w, "marketing_manager", "campaign", over, "submit")
    assert w.report("marketing_plan_execution")["rows"]


def test_new_drug_campaign_invites_graded_hospitals_and_physicians(w):
    good, poor = a_hospital(w, "测试邀请甲医院", "a"), a_hospital(w, "测试邀请丁医院", "d")
    chief = a_physician(w, "测试邀请专家", good, "CV", "chief", "a", "prescription")
    junior = a_physician(w, "测试邀请住院医", good, "CV", "resident", "d", "awareness")
    campaign = create(w, "marketing_manager", "campaign", name="测试新药推广会", kind="seminar",
                      promoted_product=product(w, "PH-CV-03")["id"], participant_mode="graded_invitation",
                      hospital_grades=["a", "b"], physician_grades=["a", "b"])
    ok = create(w, "marketing", "campaign_participant", campaign=campaign["id"], hospital=good["id"],
                physician=chief["id"], role="speaker")
    with raises("ValidationFailed"):  # hospital grade d is not invited
        create(w, "marketing", "campaign_participant", campaign=campaign["id"], hospital=poor["id"])
    with raises("ValidationFailed"):  # physician grade d is not invited
        create(w, "marketing", "campaign_participant", campaign=campaign["id"], hospital=good["id"],
               physician=junior["id"])
    update(w, "marketing", "campaign_participant", ok, attended=True)
    record = get(w, "campaign", campaign)
    assert (record["participants"], record["attended"]) == (1, 1)
    # the invitation list is picked from the physicians in the system by their grade
    assert chief["id"] in [p["id"] for p in find(w, "physician", grade="a", hospital=good["id"])]


def test_new_drug_campaign_co_hosted_with_an_institution(w):
    institute = create(w, "marketing_manager", "customer", name="测试国家研究所", customer_kind="research_institute")
    distributor = a_distributor(w, "测试合办医药公司")
    values = dict(kind="seminar", promoted_product=product(w, "PH-ONC-02")["id"], participant_mode="co_hosted")
    with raises("ValidationFailed"):  # a co-hosted campaign names its co-host
        create(w, "marketing_manager", "campaign", name="测试合办A", **values)
    with raises("ValidationFailed"):  # ... and a distributor is no medical institution
        create(w, "marketing_manager", "campaign", name="测试合办B", co_host=distributor["id"], **values)
    campaign = create(w, "marketing_manager", "campaign", name="测试合办C", co_host=institute["id"], **values)
    assert campaign["co_host"] == institute["id"]
    assert w.count("campaign", participant_mode="co_hosted") >= 3


def test_campaign_tasks_and_actual_expenses(w):
    campaign = create(w, "marketing_manager", "campaign", name="测试任务费用活动", kind="seminar",
                      budget=50000, start_date=day(-20), end_date=day(-18))
    task = create(w, "marketing_manager", "campaign_task", title="测试布置会场", campaign=campaign["id"],
                  assignee=w.uid("marketing"), due_on=day(-22))
    assert any("campaign task" in m for m in w.notified("marketing"))
    assert fire(w, "marketing", "campaign_task", task, "finish")["done_on"] == today()
    claim = create(w, "marketing", "expense_claim", campaign=campaign["id"], category="venue",
                   amount=12000, spent_on=day(-19), description="会场租赁")
    fire(w, "marketing", "expense_claim", claim, "submit")
    fire(w, "finance", "expense_claim", claim, "approve")
    record = get(w, "campaign", campaign)
    assert (record["actual_cost"], record["budget_left"], record["tasks"], record["tasks_open"]) == \
        (12000, 38000, 1, 0)


def test_campaign_evaluation_report_shows_sales_within_three_months(w):
    drug = product(w, "PH-RESP-02")
    hospital, distributor = a_hospital(w, "测试评估医院"), a_distributor(w, "测试评估医药公司")
    campaign = create(w, "marketing_manager", "campaign", name="测试评估推广会", kind="seminar",
                      promoted_product=drug["id"], budget=40000, start_date=day(-152), end_date=day(-150))
    for name in ("submit", "approve", "start"):
        fire(w, "marketing_manager", "campaign", campaign, name)

    def sale(offset, amount):
        return create(w, "commercial", "sales_record", hospital=hospital["id"], distributor=distributor["id"],
                      product=drug["id"], sale_date=day(offset), quantity=10, amount=amount,
                      campaign=campaign["id"])
    sale(-140, 1000)   # 10 days after the end
    sale(-70, 2500)    # 80 days after
    sale(-10, 9000)    # 140 days after: outside the three months
    with raises("ValidationFailed"):  # only sales of the promoted product are attributed
        create(w, "commercial", "sales_record", hospital=hospital["id"], distributor=distributor["id"],
               product=product(w, "PH-CV-01")["id"], sale_date=day(-100), quantity=1, amount=1,
               campaign=campaign["id"])
    fire(w, "marketing_manager", "campaign", campaign, "complete")
    rows = {r["name"]: r for r in w.report("campaign_evaluation")["rows"]}
    assert rows["测试评估推广会"]["sales_3m"] == 3500 and rows["测试评估推广会"]["units_3m"] == 20
    assert get(w, "campaign", campaign)["attributed_sales"] == 12500


# ---------------------------------------------------------------- sales

def test_sales_plan_and_sales_expense_budget(w):
    plan = create(w, "admin", "sales_plan", name="测试2027心血管销售计划", year=2027,
                  product_line=line(w, "CV")["id"], target_amount=1000000, expense_budget=10000)
    assert plan["expense_ratio"] == 1
    fire(w, "admin", "sales_plan", plan, "submit")
    fire(w, "sales_manager", "sales_plan", plan, "approve")
    first = create(w, "med_rep", "sales_expense", sales_plan=plan["id"], category="department_meeting", amount=8000)
    fire(w, "med_rep", "sales_expense", first, "submit")
    fire(w, "sales_manager", "sales_expense", first, "approve")
    second = create(w, "med_rep", "sales_expense", sales_plan=plan["id"], category="travel", amount=5000)
    fire(w, "med_rep", "sales_expense", second, "submit")
    with raises("ValidationFailed"):  # beyond the budget the sales manager cannot approve
        fire(w, "sales_manager", "sales_expense", second, "approve")
    fire(w, "finance", "sales_expense", second, "approve_over_budget")
    assert get(w, "sales_plan", plan)["budget_left"] == -3000
    assert any(r["name"] == "测试2027心血管销售计划" for r in w.report("sales_plan_execution")["rows"])


def test_hospitals_are_graded_by_product_sales_volume(w):
    hospital, distributor = a_hospital(w, "测试销量分级医院", "d"), a_distributor(w, "测试分级医药公司")
    create(w, "commercial", "sales_record", hospital=hospital["id"], distributor=distributor["id"],
           product=product(w, "PH-ONC-02")["id"], sale_date=day(-5), quantity=100, amount=480000)
    record = get(w, "customer", hospital)
    assert (record["hospital_sales"], record["suggested_grade"]) == (480000, "a")
    graded = update(w, "commercial", "customer", hospital, hospital_grade="a", grade_set_on=day(0))
    assert graded["hospital_grade"] == "a"
    grades = {r["hospital_grade"] for r in w.report("hospital_grading")["rows"]}
    assert {"a", "b", "c", "d"} <= grades


def test_physicians_graded_by_prescription_volume_imported(w):
    from engine.records.access import SYSTEM  # noqa: F401
    from engine.records.transfer import import_rows
    hospital = a_hospital(w, "测试处方医院")
    doctor = a_physician(w, "测试处方医师", hospital, "CV", "associate_chief")
    drug = product(w, "PH-CV-01")
    header = ["physician", "hospital", "product", "month", "quantity", "source"]
    rows = [(2, [str(doctor["id"]), str(hospital["id"]), str(drug["id"]), day(-60), "400", "distributor"]),
            (3, [str(doctor["id"]), str(hospital["id"]), str(drug["id"]), day(-30), "250", "hospital"]),
            (4, [str(doctor["id"]), str(hospital["id"]), str(drug["id"]), day(-30), "-5", "hospital"])]
    result = import_rows(w.service, w.as_("commercial"), "prescription_record", header, rows)
    assert result.created == 2 and len(result.rejected) == 1
    record = update(w, "commercial", "physician", doctor, grading_basis="prescription", grade="a")
    assert (record["prescriptions_qty"], record["suggested_grade"], record["grade"]) == (650, "a", "a")
    with raises("Forbidden"):  # the data comes from the commercial department, not the reps
        create(w, "med_rep", "prescription_record", physician=doctor["id"], hospital=hospital["id"],
               product=drug["id"], month=day(-10), quantity=1, source="hospital")


def test_physicians_graded_by_product_awareness_assessment(w):
    hospital = a_hospital(w, "测试认知医院")
    doctor = a_physician(w, "测试认知医师", hospital, "ONC", "attending")
    uid, _ = a_rep(w, "med_rep")
    cover(w, uid, hospital, "ONC")
    scores = dict(disease_knowledge=22, pharmacology=20, related_products=18, competing_products=15)
    done = create(w, "med_rep", "awareness_assessment", physician=doctor["id"],
                  product=product(w, "PH-ONC-02")["id"], **scores)
    assert (done["total"], done["level"]) == (75, "familiar")
    with raises("ValidationFailed"):
        create(w, "med_rep", "awareness_assessment", physician=doctor["id"], product=product(w, "PH-ONC-02")["id"],
               **{**scores, "pharmacology": 30})
    record = update(w, "commercial", "physician", doctor, grading_basis="awareness", grade="b")
    assert (record["awareness_score"], record["suggested_grade"]) == (75, "b")


def test_grades_are_set_by_the_commercial_department(w):
    from engine import errors
    hospital = a_hospital(w, "测试商务定级医院", "c")
    doctor = a_physician(w, "测试商务定级医师", hospital, "CV")
    uid, _ = a_rep(w, "med_rep")
    cover(w, uid, hospital, "CV")
    for entity, record, values in (("physician", doctor, {"grade": "a", "grading_basis": "awareness"}),
                                   ("customer", hospital, {"hospital_grade": "a"})):
        with pytest.raises((errors.Forbidden, errors.ValidationFailed)):
            update(w, "med_rep", entity, record, **values)
    with raises("ValidationFailed"):  # a grade states its basis
        update(w, "commercial", "physician", doctor, grade="a")
    assert update(w, "commercial", "physician", doctor, grade="a", grading_basis="awareness")["grade"] == "a"
    assert get(w, "physician", doctor, "med_rep")["grade"] == "a"  # reps read the grade


def test_only_chief_physicians_recommend_new_drugs(w):
    hospital = a_hospital(w, "测试进院医院")
    chief = a_physician(w, "测试主任医师", hospital, "CV", "chief")
    deputy = a_physician(w, "测试副主任医师", hospital, "CV", "associate_chief")
    assert get(w, "physician", chief)["is_chief"] is True
    new_drug = product(w, "PH-CV-04")
    with raises("ValidationFailed"):
        create(w, "sales_manager", "drug_recommendation", hospital=hospital["id"], product=new_drug["id"],
               physician=deputy["id"])
    with raises("ValidationFailed"):  # only new drugs
        create(w, "sales_manager", "drug_recommendation", hospital=hospital["id"],
               product=product(w, "PH-CV-01")["id"], physician=chief["id"])
    rec = create(w, "sales_manager", "drug_recommendation", hospital=hospital["id"], product=new_drug["id"],
                 physician=chief["id"], reason="指南推荐")
    fire(w, "sales_manager", "drug_recommendation", rec, "submit")
    assert fire(w, "sales_manager", "drug_recommendation", rec, "list", committee_date=day(0))["state"] == "listed"
    assert get(w, "customer", hospital)["chief_physicians"] == 1


def test_medical_rep_visits_hospitals_and_physicians_of_their_territory(w):
    uid, rep = a_rep(w, "med_rep")
    hospital = a_hospital(w, "测试拜访医院")
    chief = a_physician(w, "测试拜访主任", hospital, "CV", "chief")
    with raises("NotFound"):  # not covered yet: the hospital does not exist for the rep
        w.service.get(rep, "customer", hospital["id"])
    cover(w, uid, hospital, "CV")
    assert w.service.get(rep, "physician", chief["id"])["name"] == "测试拜访主任"
    visit = w.service.create(rep, "visit", {"subject": "测试学术拜访", "hospital": hospital["id"],
                                            "physician": chief["id"], "product_line": line(w, "CV")["id"],
                                            "purpose": "new_drug"})
    assert visit["with_chief"] is True and visit["state"] == "planned"
    with raises("ValidationFailed"):  # a visit is recorded with its notes
        w.service.transition(rep, "visit", visit["id"], "complete", None)
    done = w.service.transition(rep, "visit", visit["id"], "complete", {"notes": "介绍替格瑞洛临床数据"})
    assert done["state"] == "done"
    assert w.report("visits_by_line", "sales_manager")["rows"]


def test_rep_of_line_a_cannot_read_line_b_visit_notes_at_the_same_hospital(w):
    uid_a, rep_a = a_rep(w, "rep_line_a")
    uid_b, rep_b = a_rep(w, "rep_line_b")
    hospital = a_hospital(w, "测试多产品线医院")
    cardio = a_physician(w, "测试心内医师", hospital, "CV")
    onco = a_physician(w, "测试肿瘤医师", hospital, "ONC")
    cover(w, uid_a, hospital, "CV")
    coverage_b = cover(w, uid_b, hospital, "ONC")
    with raises("ValidationFailed"):  # one assignment per rep, hospital and product line
        cover(w, uid_b, hospital, "ONC")
    note_b = w.service.create(rep_b, "visit", {"subject": "肿瘤线拜访", "hospital": hospital["id"],
                                               "physician": onco["id"], "product_line": line(w, "ONC")["id"],
                                               "purpose": "detailing", "notes": "机密：竞品动态"})
    # both reps see the hospital, each only the physicians and visits of their own line
    assert w.service.get(rep_a, "customer", hospital["id"])["id"] == hospital["id"]
    assert w.service.get(rep_b, "customer", hospital["id"])["id"] == hospital["id"]
    with raises("NotFound"):
        w.service.get(rep_a, "visit", note_b["id"])
    with raises("NotFound"):
        w.service.get(rep_a, "physician", onco["id"])
    assert w.service.get(rep_a, "physician", cardio["id"])["id"] == cardio["id"]
    listed = w.service.list(rep_a, "visit", _query(hospital=hospital["id"])).data
    assert note_b["id"] not in [v["id"] for v in listed]
    # the manager of the line B rep's colleague ... and the line B rep see it
    assert w.service.get(rep_b, "visit", note_b["id"])["notes"] == "机密：竞品动态"
    assert w.service.get(w.as_("sales_manager"), "visit", note_b["id"])["id"] == note_b["id"]
    # ending the assignment takes the line's records away (own visits stay)
    w.service.delete(w.as_("commercial"), "rep_coverage", coverage_b["id"], coverage_b["version"])
    with raises("NotFound"):
        w.service.get(rep_b, "physician", onco["id"])
    assert w.service.get(rep_b, "visit", note_b["id"])["id"] == note_b["id"]


def test_one_hospital_is_served_by_several_reps_one_per_product_line(w):
    rows = w.report("coverage_by_line")["rows"]
    assert len({r["product_line"] for r in rows}) >= 3
    shared = find(w, "rep_coverage", hospital=one(w, "customer", name="上海市第一人民医院")["id"])
    assert len({c["product_line"] for c in shared}) >= 2 and len({c["rep"] for c in shared}) >= 2


def test_reps_do_not_negotiate_prices_hospitals_buy_through_distributors(w):
    uid, rep = a_rep(w, "med_rep")
    hospital, distributor = a_hospital(w, "测试询价医院"), a_distributor(w, "测试询价医药公司")
    cover(w, uid, hospital, "RESP")
    from engine import errors
    with pytest.raises((errors.Forbidden, errors.NotFound)):  # the entity does not exist for reps
        create(w, "med_rep", "channel_price", channel=distributor["id"], product=product(w, "PH-RESP-01")["id"],
               negotiated_price=200, valid_to=day(90))
    with pytest.raises((errors.Forbidden, errors.NotFound)):
        create(w, "med_rep", "channel_order", channel=distributor["id"])
    base = {"subject": "测试询价拜访", "hospital": hospital["id"], "product_line": line(w, "RESP")["id"],
            "purpose": "detailing", "price_inquiry": True}
    with raises("ValidationFailed"):  # a price question is referred to the distributor
        w.service.create(rep, "visit", base)
    assert w.service.create(rep, "visit", {**base, "referred_to": distributor["name"]})["price_inquiry"] is True
    with raises("ValidationFailed"):  # a hospital buys from a distributor, never from the maker
        create(w, "commercial", "sales_record", hospital=hospital["id"], distributor=hospital["id"],
               product=product(w, "PH-RESP-01")["id"], sale_date=day(-1), quantity=1, amount=200)
    with raises("ValidationFailed"):
        create(w, "commercial", "channel_order", channel=hospital["id"])


# ---------------------------------------------------------------- channels

def test_channels_with_negotiated_prices_and_discounts_approved(w):
    drug = product(w, "PH-CV-02")
    store = create(w, "commercial", "customer", name="测试大药房", customer_kind="drug_store")
    clinic = create(w, "commercial", "customer", name="测试诊所", customer_kind="clinic")
    price = create(w, "commercial", "channel_price", channel=store["id"], product=drug["id"],
                   negotiated_price=28.8, valid_to=day(365))
    assert (price["list_price"], price["discount"], price["channel_kind"]) == (32, 10, "drug_store")
    fire(w, "commercial", "channel_price", price, "submit")
    assert any("channel price" in m for m in w.notified("commercial_manager"))
    with raises("Forbidden"):
        fire(w, "commercial", "channel_price", price, "approve")
    approved = fire(w, "commercial_manager", "channel_price", price, "approve")
    assert approved["state"] == "approved" and approved["approved_by"] == w.uid("commercial_manager")
    order = create(w, "commercial", "channel_order", channel=store["id"],
                   lines=[{"product": drug["id"], "price_agreement": price["id"], "quantity": 100}])
    assert order["total"] == 2880
    draft = create(w, "commercial", "channel_price", channel=clinic["id"], product=drug["id"],
                   negotiated_price=30, valid_to=day(30))
    with raises("ValidationFailed"):  # only approved prices go on orders
        create(w, "commercial", "channel_order", channel=clinic["id"],
               lines=[{"product": drug["id"], "price_agreement": draft["id"], "quantity": 1}])
    assert fire(w, "commercial", "channel_order", order, "confirm")["state"] == "confirmed"
    kinds = {r["channel_kind"] for r in w.report("channel_sales")["rows"]}
    assert {"distributor", "drug_store", "clinic"} <= kinds
    assert {"distributor", "drug_store", "clinic"} <= {r["channel_kind"] for r in w.report("channel_prices")["rows"]}


# ---------------------------------------------------------------- service

def test_consultation_and_online_service_for_channels_and_hospitals(w):
    distributor = a_distributor(w, "测试咨询医药公司")
    asked = create(w, "service_agent", "consultation", subject="储存条件", customer=distributor["id"],
                   channel="online", topic="product_info", question="冷链要求？")
    with raises("ValidationFailed"):
        fire(w, "service_agent", "consultation", asked, "answer")
    answered = fire(w, "service_agent", "consultation", asked, "answer", answer="2-8℃冷藏")
    assert answered["state"] == "answered" and answered["answered_at"] is not None
    channels = {r["channel"] for r in w.report("consultations")["rows"]}
    assert {"online", "phone"} <= channels


def test_adverse_event_cannot_be_edited_after_submission(w):
    drug = product(w, "PH-ONC-02")
    report = create(w, "med_rep", "adverse_event", product=drug["id"], reaction="皮疹", seriousness="serious",
                    aware_date=day(-2))
    assert report["reporting_deadline"] == today() + dt.timedelta(days=13)
    with raises("ValidationFailed"):  # the required facts first
        fire(w, "med_rep", "adverse_event", report, "submit")
    facts = dict(patient_initials="ZXY", patient_age=63, patient_sex="male", onset_date=day(-3),
                 reporter_kind="hospital", outcome="recovering")
    submitted = fire(w, "med_rep", "adverse_event", report, "submit", **facts)
    assert submitted["state"] == "submitted" and submitted["submitted_on"] == today()
    assert any("serious adverse" in m for m in w.notified("drug_safety"))
    for values in ({"reaction": "改写"}, {"seriousness": "non_serious"}, {"reported_on": day(0)}):
        with raises("ValidationFailed"):
            update(w, "drug_safety", "adverse_event", report, **values)
    followed = fire(w, "med_rep", "adverse_event", report, "follow_up", fu_information="停药后皮疹消退",
                    fu_outcome="recovered")
    assert (followed["outcome"], followed["follow_ups"], followed["fu_information"]) == ("recovered", 1, None)
    filed = one(w, "adr_follow_up", adverse_event=report["id"])
    assert (filed["information"], filed["outcome"]) == ("停药后皮疹消退", "recovered")
    with raises("Forbidden"):
        fire(w, "med_rep", "adverse_event", report, "report", authority_ref="NMPA-1", causality="probable")
    reported = fire(w, "drug_safety", "adverse_event", report, "report", authority_ref="NMPA-TEST-1",
                    causality="probable")
    assert reported["reported_on"] == today() and reported["reported_late"] is False
    history, _ = w.service.history(w.as_("drug_safety"), "adverse_event", report["id"])
    actions = [h["action"] for h in history]
    assert {"create", "transition:submit", "transition:follow_up", "transition:report"} <= set(actions)


def test_adverse_event_deadlines_are_tracked_and_reminded(w):
    report = create(w, "service_agent", "adverse_event", product=product(w, "PH-CV-03")["id"], reaction="头晕",
                    seriousness="non_serious", aware_date=day(-28), patient_initials="LM", patient_age=40,
                    patient_sex="female", onset_date=day(-29), reporter_kind="patient", outcome="recovered")
    assert report["reporting_deadline"] == today() + dt.timedelta(days=2)
    fire(w, "service_agent", "adverse_event", report, "submit")
    w.service.automations.run_due(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1))
    assert any("within 3 days" in m for m in w.notified("drug_safety"))
    rows = w.report("adverse_events")["rows"]
    assert sum(r["late"] for r in rows) >= 1 and {"serious", "non_serious"} <= {r["seriousness"] for r in rows}


def test_feedback_from_hospitals_and_patients(w):
    with raises("ValidationFailed"):  # a patient's feedback names the patient
        create(w, "service_agent", "feedback", source="patient", kind="efficacy", content="效果好")
    hospital = a_hospital(w, "测试反馈医院")
    praise = create(w, "service_agent", "feedback", source="hospital", customer=hospital["id"], kind="praise",
                    content="服务及时")
    assert fire(w, "service_agent", "feedback", praise, "resolve", response="感谢")["state"] == "resolved"
    side = create(w, "service_agent", "feedback", source="patient", patient_name="王测试", kind="side_effect",
                  content="服药后恶心", product=product(w, "PH-CV-01")["id"])
    assert any("side effect" in m for m in w.notified("drug_safety"))
    with raises("ValidationFailed"):  # a side effect is resolved only once it is an ADR report
        fire(w, "service_agent", "feedback", side, "resolve", response="已记录")
    moved = fire(w, "service_agent", "feedback", side, "to_adverse_event")
    adr = get(w, "adverse_event", {"id": moved["adverse_event"]})
    assert (adr["state"], adr["reaction"], adr["reporter_kind"]) == ("draft", "服药后恶心", "patient")
    assert fire(w, "service_agent", "feedback", side, "resolve", response="已转药物警戒")["state"] == "resolved"
    assert {"hospital", "patient"} <= {r["source"] for r in w.report("feedback_by_kind")["rows"]}


def test_medical_device_installation_maintenance_and_repair(w):
    hospital = a_hospital(w, "测试器械医院")
    with raises("ValidationFailed"):  # only devices are installed
        create(w, "service_manager", "device", serial_no="TEST-DRUG-1", product=product(w, "PH-CV-01")["id"],
               hospital=hospital["id"])
    unit = create(w, "service_manager", "device", serial_no="TEST-US80-0001", product=product(w, "MD-DEV-03")["id"],
                  hospital=hospital["id"], installed_on=day(-10), status="awaiting_installation")
    assert unit["under_warranty"] is True
    with raises("ValidationFailed"):  # a repair states the fault
        create(w, "service_agent", "device_service_order", kind="repair", device=unit["id"], hospital=hospital["id"])
    order = create(w, "service_agent", "device_service_order", kind="repair", device=unit["id"],
                   hospital=hospital["id"], fault="图像伪影", priority="urgent")
    with raises("Forbidden"):
        fire(w, "field_engineer", "device_service_order", order, "schedule",
             engineer=w.uid("field_engineer"), scheduled_on=day(1))
    fire(w, "service_manager", "device_service_order", order, "schedule", engineer=w.uid("field_engineer"),
         scheduled_on=day(1))
    assert any("service order" in m for m in w.notified("field_engineer"))
    fire(w, "field_engineer", "device_service_order", order, "start")
    with raises("ValidationFailed"):
        fire(w, "field_engineer", "device_service_order", order, "complete")
    done = fire(w, "field_engineer", "device_service_order", order, "complete", work_done="更换探头", labour_hours=3)
    assert done["completed_on"] == today() and done["under_warranty"] is True
    assert get(w, "device", unit)["repairs"] == 1
    kinds = {r["kind"] for r in w.report("device_service")["rows"]}
    assert {"installation", "maintenance", "repair"} <= kinds


def test_demo_site_pages_render(w, monkeypatch):
    """What `crm demo --pack pharma` serves: every dashboard and every list page (SQLite only)."""
    if w.kind != "sqlite":
        pytest.skip("the pages are the same on PostgreSQL; rendered once")
    assert_demo_pages_render(w, monkeypatch)
