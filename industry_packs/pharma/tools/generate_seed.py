"""Write industry_packs/pharma/seed/: the pharma pack's sample records.

A Chinese maker of drugs (cardiovascular, oncology, respiratory) and medical devices selling to
hospitals through distributors: territories, product lines, hospitals graded by sales,
physicians graded by prescriptions or awareness, rep coverage, visits, yearly marketing plans
and new-drug campaigns with participants, tasks and expenses, sales plans and expenses,
distributor flow data, channel prices and orders, consultations, adverse drug reactions,
feedback, installed devices and their service orders. It adds to the standard model's sample
data (metadata/seed/). Run `python3 industry_packs/pharma/tools/generate_seed.py`; the output
is deterministic (dated relative to seedkit.ANCHOR).

References are written as the referenced record's title; records whose title the engine
assigns (autonumbers) are referenced by id: this layer seeds every record of those entities,
so the n-th record gets id n on a fresh database.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "metadata" / "tools"))
from seedkit import ANCHOR, CITIES, Gen, iso, write_seed  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "seed"
g = Gen(20261120)

LINES = [("心血管产品线", "CV", "drug", "心血管"), ("肿瘤产品线", "ONC", "drug", "肿瘤"),
         ("呼吸产品线", "RESP", "drug", "呼吸"), ("医疗器械产品线", "DEV", "device", "影像与监护")]
DEPT = {"心血管产品线": "心内科", "肿瘤产品线": "肿瘤科", "呼吸产品线": "呼吸内科", "医疗器械产品线": "放射科"}
PRODUCTS = [  # name, code, line, kind, price, new
    ("瑞舒伐他汀钙片 10mg", "PH-CV-01", "心血管产品线", "drug", 45.0, False),
    ("苯磺酸氨氯地平片 5mg", "PH-CV-02", "心血管产品线", "drug", 32.0, False),
    ("替格瑞洛片 90mg", "PH-CV-03", "心血管产品线", "drug", 118.0, True),
    ("沙库巴曲缬沙坦钠片", "PH-CV-04", "心血管产品线", "drug", 156.0, True),
    ("注射用紫杉醇（白蛋白结合型）", "PH-ONC-01", "肿瘤产品线", "drug", 2180.0, False),
    ("甲磺酸奥希替尼片", "PH-ONC-02", "肿瘤产品线", "drug", 5100.0, True),
    ("注射用培美曲塞二钠", "PH-ONC-03", "肿瘤产品线", "drug", 860.0, False),
    ("布地奈德福莫特罗吸入粉雾剂", "PH-RESP-01", "呼吸产品线", "drug", 238.0, False),
    ("噻托溴铵吸入粉雾剂", "PH-RESP-02", "呼吸产品线", "drug", 196.0, True),
    ("多参数监护仪 PM-9000", "MD-DEV-01", "医疗器械产品线", "device", 68000.0, False),
    ("数字化X射线摄影系统 DR-600", "MD-DEV-02", "医疗器械产品线", "device", 980000.0, False),
    ("彩色多普勒超声诊断仪 US-80", "MD-DEV-03", "医疗器械产品线", "device", 650000.0, True),
]
DRUGS = [p for p in PRODUCTS if p[3] == "drug"]
DEVICES = [p for p in PRODUCTS if p[3] == "device"]
TERRITORIES = [("华东一区", "华东", ["上海", "苏州", "无锡", "杭州", "宁波"]),
               ("华东二区", "华东", ["南京", "合肥", "常州"]),
               ("华北区", "华北", ["北京", "天津", "石家庄", "济南", "青岛", "唐山"]),
               ("华中区", "华中", ["郑州", "武汉", "长沙", "南昌"]),
               ("华南区", "华南", ["广州", "深圳", "佛山", "东莞", "厦门", "福州"]),
               ("西南区", "西南", ["成都", "重庆", "昆明"]),
               ("西北区", "西北", ["西安", "兰州"]),
               ("东北区", "东北", ["沈阳", "大连", "长春", "哈尔滨"])]
TERRITORY_OF = {city: name for name, _, cities in TERRITORIES for city in cities}
PATTERNS = ["{c}市第一人民医院", "{c}市中心医院", "{c}市第二人民医院", "{c}市中医院", "{c}大学附属医院",
            "{c}市肿瘤医院", "{c}市心血管病医院", "{c}市第三人民医院"]
GRADES = ["a", "b", "c", "d"]


def main() -> None:
    files: list[tuple[str, str, list[dict], str]] = []

    def add(name, entity, records, header):
        files.append((name, entity, records, header))

    add("01_territories.yaml", "territory",
        [{"name": n, "region": r, "manager": "sales_manager"} for n, r, _ in TERRITORIES],
        "Sales territories (辖区)")
    add("02_product_lines.yaml", "product_line",
        [{"name": n, "code": c, "kind": k, "therapeutic_area": a} for n, c, k, a in LINES],
        "Product lines; each has its own reps")
    add("03_products.yaml", "product",
        [{"name": n, "code": c, "product_line": line, "product_kind": kind, "unit_price": price,
          "is_new_drug": new, "unit": "盒" if kind == "drug" else "台",
          "approval_no": (f"国药准字H2026{i:04d}" if kind == "drug" else f"国械注准2026{i:07d}"),
          "dosage_form": ("片剂" if "片" in n else "注射剂" if "注射" in n else "吸入剂") if kind == "drug" else None}
         for i, (n, c, line, kind, price, new) in enumerate(PRODUCTS, start=1)],
        "Drugs and medical devices")

    # ------------------------------------------------------------------ hospitals and channels
    hospitals = []
    for i in range(150):
        city = CITIES[i % len(CITIES)][0]
        name = PATTERNS[(i // len(CITIES)) % len(PATTERNS)].format(c=city)
        level = g.weighted([("tertiary_a", 4), ("tertiary", 3), ("secondary", 3)])
        grade = g.weighted([("a", 2), ("b", 3), ("c", 3), ("d", 2)])
        hospitals.append({"name": name, "customer_kind": "hospital", "hospital_level": level,
                          "hospital_grade": grade, "grade_set_on": iso(g.days_ago(30, 300)),
                          "territory": TERRITORY_OF[city], "region": city,
                          "beds": g.rng.randint(300, 3000), "owner": "commercial",
                          "tier": {"a": "a", "b": "b", "c": "c", "d": "c"}[grade]})
    distributors = [{"name": f"{n}医药有限公司", "customer_kind": "distributor", "owner": "commercial",
                     "channel_licence": f"沪AA{2100 + i}", "region": c}
                    for i, (n, c) in enumerate([("国控华东", "上海"), ("华润北方", "北京"), ("上药华中", "武汉"),
                                                ("九州通华南", "广州"), ("重药西南", "重庆"), ("国控东北", "沈阳"),
                                                ("英特浙江", "杭州"), ("南京医药", "南京"), ("华润西北", "西安"),
                                                ("国控山东", "济南"), ("柳药福建", "福州"), ("鹭燕", "厦门")])]
    stores = [{"name": f"{c}{n}大药房", "customer_kind": "drug_store", "owner": "commercial",
               "channel_licence": f"药经{3100 + i}", "region": c}
              for i, (c, n) in enumerate((CITIES[k % len(CITIES)][0], ["益丰", "老百姓", "一心堂", "大参林"][k % 4])
                                         for k in range(20))]
    clinics = [{"name": f"{CITIES[k][0]}仁和社区诊所", "customer_kind": "clinic", "owner": "commercial",
                "channel_licence": f"诊{4100 + k}", "region": CITIES[k][0]} for k in range(12)]
    institutions = [{"name": n, "customer_kind": kind, "owner": "marketing"} for n, kind in [
        ("中华医学会心血管病学分会", "medical_institution"), ("中国抗癌协会肺癌专业委员会", "medical_institution"),
        ("中国医学科学院肿瘤研究所", "research_institute"), ("国家心血管病中心", "research_institute"),
        ("国家呼吸医学中心", "research_institute"), ("中国医师协会呼吸医师分会", "medical_institution")]]
    add("04_customers.yaml", "customer", hospitals + distributors + stores + clinics + institutions,
        "Hospitals, distributors, drug stores, clinics and co-hosting institutions")

    # ------------------------------------------------------------------ rep coverage
    coverage = []
    for i, h in enumerate(hospitals):
        if i < 120:
            coverage.append(("med_rep", h, "心血管产品线"))
        if 60 <= i < 160:
            coverage.append(("med_rep", h, "肿瘤产品线"))
        if i < 100:
            coverage.append(("device_rep", h, "医疗器械产品线"))
        if i % 4 == 0:
            coverage.append(("sales_rep", h, "呼吸产品线"))
    # sales_rep has no sharing rule: the coverage still documents who is responsible
    add("05_rep_coverage.yaml", "rep_coverage",
        [{"rep": rep, "hospital": h["name"], "product_line": line, "territory": h["territory"],
          "since": iso(g.days_ago(200, 700))} for rep, h, line in coverage],
        "Which rep covers which hospital for which product line")
    covered = {}
    for rep, h, line in coverage:
        covered.setdefault((h["name"], line), rep)

    # ------------------------------------------------------------------ physicians
    titles = [("chief", 2), ("associate_chief", 3), ("attending", 4), ("resident", 1)]
    physicians = []
    for i, h in enumerate(hospitals):
        for k in range(2):
            line = LINES[(i + k) % len(LINES)][0]
            name, _ = g.person(three_chars=True)
            basis = g.pick(["prescription", "awareness"])
            physicians.append({"name": name, "hospital": h["name"], "department": DEPT[line],
                               "title": "chief" if k == 0 else g.weighted(titles), "product_line": line,
                               "phone": g.mobile(), "grading_basis": basis,
                               "grade": g.weighted([("a", 2), ("b", 3), ("c", 3), ("d", 2)]),
                               "grade_set_on": iso(g.days_ago(20, 200))})
    add("06_physicians.yaml", "physician", physicians, "Physicians of the hospitals")

    # ------------------------------------------------------------------ prescriptions and awareness
    product_of_line = {line: [p for p in PRODUCTS if p[2] == line] for line, *_ in LINES}
    rx = []
    for ph in physicians:
        if ph["grading_basis"] != "prescription" or ph["product_line"] == "医疗器械产品线":
            continue
        for m in range(2):
            month = (ANCHOR.replace(day=1) - dt.timedelta(days=31 * (m + 1))).replace(day=1)
            product = g.pick(product_of_line[ph["product_line"]])
            rx.append({"physician": ph["name"], "hospital": ph["hospital"], "product": product[0],
                       "month": iso(month), "quantity": g.rng.randint(10, 320),
                       "source": g.pick(["distributor", "hospital"]), "owner": "commercial"})
    add("07_prescription_records.yaml", "prescription_record", rx,
        "Prescriptions per physician and month, imported from distributors and hospitals")
    aw = []
    for ph in physicians:
        if ph["grading_basis"] != "awareness":
            continue
        product = g.pick(product_of_line[ph["product_line"]])
        rep = covered.get((ph["hospital"], ph["product_line"]), "sales_manager")
        aw.append({"physician": ph["name"], "product": product[0], "assessed_on": iso(g.days_ago(10, 180)),
                   "disease_knowledge": g.rng.randint(8, 25), "pharmacology": g.rng.randint(5, 25),
                   "related_products": g.rng.randint(3, 25), "competing_products": g.rng.randint(3, 25),
                   "owner": rep if rep != "sales_rep" else "sales_manager"})
    add("08_awareness_assessments.yaml", "awareness_assessment", aw,
        "Scored product awareness of physicians (disease, pharmacology, related and competing products)")

    # ------------------------------------------------------------------ visits
    visits = []
    purposes = [("detailing", 5), ("academic", 2), ("new_drug", 2), ("follow_up", 3), ("event_invitation", 1), ("service", 1)]
    by_hospital_line = {}
    for ph in physicians:
        by_hospital_line.setdefault((ph["hospital"], ph["product_line"]), []).append(ph)
    keys = [(k, rep) for k, rep in covered.items() if rep in ("med_rep", "device_rep") and k in by_hospital_line]
    for n in range(420):
        (hospital, line), rep = keys[n % len(keys)]
        ph = g.pick(by_hospital_line[(hospital, line)])
        product = g.pick(product_of_line[line])
        day = g.days_ago(1, 360) if n % 12 else g.days_ahead(1, 20)
        done = day <= ANCHOR and n % 17 != 0
        price = n % 23 == 0
        visits.append({"subject": f"{ph['department']}拜访 #{n + 1:04d}", "hospital": hospital,
                       "physician": ph["name"], "product_line": line, "product": product[0],
                       "visit_date": iso(day), "purpose": g.weighted(purposes),
                       "notes": f"与{ph['name']}沟通{product[0]}的临床使用情况" if done else None,
                       "physician_feedback": g.pick(["疗效认可", "关注不良反应", "希望更多学术资料", "价格偏高（已转医药公司）", None]) if done else None,
                       "next_step": g.pick(["两周后回访", "邀请参加学术会议", "提供文献资料", None]),
                       "price_inquiry": price, "referred_to": distributors[n % len(distributors)]["name"] if price else None,
                       "state": "done" if done else ("planned" if day > ANCHOR else "cancelled"), "owner": rep})
    add("09_visits.yaml", "visit", visits, "Medical reps' visits")

    # ------------------------------------------------------------------ marketing
    plans = [{"name": "2025年度市场计划", "year": 2025, "total_budget": 3000000.0, "state": "closed",
              "objectives": "心血管与肿瘤新药上市推广"},
             {"name": "2026年度市场计划", "year": 2026, "total_budget": 3600000.0, "state": "approved",
              "objectives": "新药进院、学术推广与器械装机"}]
    add("10_marketing_plans.yaml", "marketing_plan", plans, "Yearly marketing plans")
    new_products = [p for p in PRODUCTS if p[5]]
    campaigns = []
    for i in range(14):
        product = new_products[i % len(new_products)]
        start = ANCHOR - dt.timedelta(days=400 - i * 26)
        end = start + dt.timedelta(days=2 + i % 3)
        mode = "co_hosted" if i % 3 == 2 else "graded_invitation"
        status = "completed" if end < ANCHOR - dt.timedelta(days=20) else ("in_progress" if start <= ANCHOR else "approved")
        host = institutions[i % len(institutions)]["name"] if mode == "co_hosted" else None
        campaigns.append({"name": f"{product[0].split()[0]}新药推广会（第{i + 1}场）", "kind": g.pick(["seminar", "webinar", "exhibition"]),
                          "marketing_plan": plans[0]["name"] if start.year == 2025 else plans[1]["name"],
                          "promoted_product": product[0], "participant_mode": mode,
                          "hospital_grades": ["a", "b"] if mode == "graded_invitation" else None,
                          "physician_grades": ["a", "b", "c"] if mode == "graded_invitation" else None,
                          "co_host": host, "start_date": iso(start), "end_date": iso(end),
                          "budget": float(80000 + (i % 5) * 30000), "status": status,
                          "target_audience": "A/B级医院主任及副主任医师", "objective": f"推广{product[0]}",
                          "evaluation_score": (3 + i % 3) if status == "completed" and i % 2 == 0 else None,
                          "owner": "marketing_manager" if i % 2 else "marketing"})
    add("11_campaigns.yaml", "campaign", campaigns, "New-drug promotion campaigns")
    grade_of = {h["name"]: h["hospital_grade"] for h in hospitals}
    participants = []
    for i, c in enumerate(campaigns):
        if c["status"] == "approved" and i % 2:
            continue
        line = next(p[2] for p in PRODUCTS if p[0] == c["promoted_product"])
        pool = [ph for ph in physicians if ph["product_line"] == line]
        if c["participant_mode"] == "graded_invitation":
            pool = [ph for ph in pool if grade_of[ph["hospital"]] in c["hospital_grades"]
                    and ph["grade"] in c["physician_grades"]]
        for ph in pool[i % 5::4][:22]:
            participants.append({"campaign": c["name"], "hospital": ph["hospital"], "physician": ph["name"],
                                 "role": "speaker" if ph["grade"] == "a" and ph["title"] == "chief" else "attendee",
                                 "invited_on": iso(dt.date.fromisoformat(c["start_date"]) - dt.timedelta(days=14)),
                                 "attended": c["status"] != "approved" and g.rng.random() < 0.8})
    add("12_campaign_participants.yaml", "campaign_participant", participants,
        "Participants invited by grade, or at co-hosted campaigns")
    tasks = []
    for c in campaigns:
        start = dt.date.fromisoformat(c["start_date"])
        for k, (title, days) in enumerate([("会场与物料准备", 20), ("邀请函发送与确认", 14), ("讲者课件审核", 7), ("会后总结与费用核销", -10)]):
            due = start - dt.timedelta(days=days)
            state = "done" if due < ANCHOR - dt.timedelta(days=3) else ("in_progress" if k % 2 else "open")
            tasks.append({"title": f"{title}：{c['name']}", "campaign": c["name"],
                          "assignee": g.pick(["marketing", "marketing_manager", "med_rep"]),
                          "due_on": iso(due), "state": state,
                          "done_on": iso(due - dt.timedelta(days=1)) if state == "done" else None,
                          "owner": "marketing_manager"})
    add("13_campaign_tasks.yaml", "campaign_task", tasks, "Campaign tasks")
    claims = []
    for c in campaigns:
        if c["status"] == "approved":
            continue
        spent = dt.date.fromisoformat(c["end_date"])
        for cat in ("venue", "materials", "travel", "catering"):
            amount = float(round(c["budget"] * g.rng.uniform(0.1, 0.22), -2))
            claims.append({"campaign": c["name"], "category": cat, "amount": amount,
                           "spent_on": iso(min(spent, ANCHOR)), "description": f"{c['name']}：{cat}费用",
                           "state": "approved", "owner": "marketing"})
    add("14_expense_claims.yaml", "expense_claim", claims, "Actual campaign expenses")

    # ------------------------------------------------------------------ sales plans and expenses
    splans = []
    for year in (2025, 2026):
        for name, code, kind, _ in LINES:
            splans.append({"name": f"{year}年{name}销售计划", "year": year, "product_line": name,
                           "target_amount": float({"CV": 3000000, "ONC": 5000000, "RESP": 1500000, "DEV": 8000000}[code]),
                           "expense_budget": float({"CV": 300000, "ONC": 450000, "RESP": 150000, "DEV": 400000}[code]),
                           "state": "closed" if year == 2025 else "approved", "owner": "sales_manager"})
    add("15_sales_plans.yaml", "sales_plan", splans, "Sales plans with sales expense budgets")
    sexp = []
    for n in range(80):
        plan = splans[n % len(splans)]
        day = dt.date(plan["year"], 1, 1) + dt.timedelta(days=g.rng.randint(5, 300))
        day = min(day, ANCHOR)
        state = "approved" if n % 7 else "pending_approval"
        sexp.append({"sales_plan": plan["name"], "category": g.pick(["academic_meeting", "department_meeting", "travel", "samples"]),
                     "amount": g.money(800, 9000), "spent_on": iso(day), "description": "科室会/学术推广费用",
                     "state": state, "owner": g.pick(["med_rep", "device_rep"])})
    add("16_sales_expenses.yaml", "sales_expense", sexp, "Sales expenses against the plans' budgets")

    # ------------------------------------------------------------------ distributor flow data
    records = []
    completed = [c for c in campaigns if c["status"] == "completed"]
    for n in range(500):
        h = hospitals[n % len(hospitals)]
        product = g.pick(DRUGS)
        day = g.days_ago(3, 540)
        campaign = None
        for c in completed:
            end = dt.date.fromisoformat(c["end_date"])
            if c["promoted_product"] == product[0] and end <= day <= end + dt.timedelta(days=120):
                campaign = c["name"]
        qty = g.rng.randint(20, 400) * (3 if h["hospital_grade"] == "a" else 1)
        records.append({"hospital": h["name"], "distributor": distributors[n % len(distributors)]["name"],
                        "product": product[0], "sale_date": iso(day), "quantity": qty,
                        "amount": round(qty * product[4] * 0.92, 2), "source": "distributor" if n % 5 else "hospital",
                        "campaign": campaign, "owner": "commercial"})
    for n in range(60):  # drug stores and clinics are end points too
        end = (stores + clinics)[n % (len(stores) + len(clinics))]
        product = g.pick(DRUGS[:4] + DRUGS[7:])
        qty = g.rng.randint(20, 200)
        records.append({"hospital": end["name"], "distributor": distributors[n % len(distributors)]["name"],
                        "product": product[0], "sale_date": iso(g.days_ago(3, 300)), "quantity": qty,
                        "amount": round(qty * product[4] * 0.95, 2), "source": "distributor", "owner": "commercial"})
    add("17_sales_records.yaml", "sales_record", records,
        "Hospital sales reported by distributors and hospitals (imported flow data)")

    # ------------------------------------------------------------------ channels
    prices = []
    for n, ch in enumerate(distributors + stores + clinics):
        for product in (DRUGS if ch["customer_kind"] == "distributor" else DRUGS[:4])[n % 3::3]:
            disc = {"distributor": (0.08, 0.2), "drug_store": (0.03, 0.1), "clinic": (0.02, 0.08)}[ch["customer_kind"]]
            state = g.weighted([("approved", 7), ("pending_approval", 1), ("draft", 1), ("rejected", 1)])
            prices.append({"channel": ch["name"], "product": product[0], "list_price": product[4],
                           "negotiated_price": round(product[4] * (1 - g.rng.uniform(*disc)), 2),
                           "rebate": g.pick([0, 1, 2, 3]), "valid_from": iso(g.days_ago(60, 300)),
                           "valid_to": iso(g.days_ahead(60, 400)), "state": state,
                           "approved_by": "commercial_manager" if state == "approved" else None,
                           "owner": "commercial"})
    add("18_channel_prices.yaml", "channel_price", prices, "Prices and discounts negotiated per channel")
    orders = []
    for n in range(120):
        ch = (distributors * 3 + stores + clinics)[n % (len(distributors) * 3 + len(stores) + len(clinics))]
        day = g.days_ago(1, 360)
        lines = []
        for product in g.rng.sample(DRUGS if ch["customer_kind"] == "distributor" else DRUGS[:4], 2):
            factor = {"distributor": 0.85, "drug_store": 0.93, "clinic": 0.95}[ch["customer_kind"]]
            lines.append({"product": product[0], "quantity": g.rng.randint(50, 2000) if ch["customer_kind"] == "distributor" else g.rng.randint(10, 200),
                          "unit_price": round(product[4] * factor, 2)})
        state = "completed" if day < ANCHOR - dt.timedelta(days=30) else g.pick(["confirmed", "shipped", "draft"])
        if n % 29 == 0:
            state = "cancelled"
        orders.append({"channel": ch["name"], "order_date": iso(day), "lines": lines, "state": state,
                       "owner": "commercial"})
    add("19_channel_orders.yaml", "channel_order", orders, "Orders from distributors, drug stores and clinics")

    # ------------------------------------------------------------------ service
    consults = []
    topics = ["product_info", "dosage", "medical", "supply", "device_use", "other"]
    for n in range(90):
        cust = (hospitals[:60] + distributors + stores)[n % 92]
        product = g.pick(PRODUCTS)
        state = g.weighted([("closed", 5), ("answered", 3), ("new", 2)])
        consults.append({"subject": f"{product[0]}咨询", "customer": cust["name"], "asked_by": g.person()[0],
                         "channel": g.pick(["online", "phone", "wechat", "email"]), "topic": g.pick(topics),
                         "product": product[0], "question": f"关于{product[0]}的{g.pick(['用法用量', '配伍禁忌', '供货周期', '储存条件', '操作说明'])}",
                         "answer": "已按说明书及医学部意见答复" if state != "new" else None, "state": state,
                         "owner": "service_agent"})
    add("20_consultations.yaml", "consultation", consults, "Consultations and online service for channels and hospitals")
    adrs = []
    for n in range(60):
        product = g.pick(DRUGS)
        aware = g.days_ago(5, 300)
        seriousness = g.weighted([("non_serious", 7), ("serious", 3), ("death", 0.3)])
        state = g.weighted([("closed", 4), ("reported", 3), ("following_up", 2), ("submitted", 1), ("draft", 1)])
        limit = {"non_serious": 30, "serious": 15, "death": 1}[seriousness]
        h = hospitals[n * 3 % len(hospitals)]
        reported = aware + dt.timedelta(days=g.rng.randint(0, limit + (5 if n % 9 == 0 else 0))) \
            if state in ("reported", "following_up", "closed") else None
        if reported and n % 9 == 0:  # some were reported after the deadline
            reported = aware + dt.timedelta(days=limit + 3)
        if reported and reported > ANCHOR:
            reported = ANCHOR
        adrs.append({"product": product[0], "batch_no": f"B{aware.year}{n + 100:04d}",
                     "reaction": g.pick(["皮疹伴瘙痒", "肝功能异常（转氨酶升高）", "恶心呕吐", "头晕乏力", "白细胞减少", "过敏性休克", "肌痛"]),
                     "patient_initials": g.pick(["WXM", "LJ", "ZHY", "CL", "LXF", "YM"]), "patient_age": g.rng.randint(18, 85),
                     "patient_sex": g.pick(["female", "male"]),
                     "onset_date": iso(aware - dt.timedelta(days=g.rng.randint(0, 6))), "aware_date": iso(aware),
                     "seriousness": seriousness, "reporter_kind": g.pick(["hospital", "hospital", "patient", "channel", "rep"]),
                     "hospital": h["name"], "outcome": g.pick(["recovering", "recovered", "unknown", "not_recovered"]),
                     "causality": g.pick(["probable", "possible", "unlikely"]) if state != "draft" else None,
                     "submitted_on": iso(aware + dt.timedelta(days=1)) if state != "draft" else None,
                     "reported_on": iso(reported) if reported else None,
                     "authority_ref": f"NMPA-ADR-{aware.year}-{n + 5000}" if reported else None,
                     "state": state, "owner": g.pick(["drug_safety", "med_rep", "service_agent"])})
    add("21_adverse_events.yaml", "adverse_event", adrs, "Adverse drug reaction reports")
    fus = []
    for n, a in enumerate(adrs):
        if a["state"] in ("following_up", "closed"):
            fus.append({"adverse_event": n + 1, "received_on": iso(min(ANCHOR, dt.date.fromisoformat(a["aware_date"]) + dt.timedelta(days=20))),
                        "information": "随访：患者停药后症状缓解", "outcome": a["outcome"], "seriousness": a["seriousness"],
                        "owner": "drug_safety"})
    add("22_adr_follow_ups.yaml", "adr_follow_up", fus, "Follow-ups of adverse drug reactions")
    fbs = []
    for n in range(80):
        source = g.weighted([("hospital", 5), ("patient", 4), ("channel", 1)])
        kind = g.pick(["efficacy", "quality", "packaging", "supply", "service", "praise", "side_effect"])
        state = g.weighted([("closed", 4), ("resolved", 2), ("in_progress", 2), ("new", 2)])
        if kind == "side_effect" and state in ("closed", "resolved"):
            state = "in_progress"
        cust = hospitals[n % len(hospitals)]["name"] if source == "hospital" else \
            distributors[n % len(distributors)]["name"] if source == "channel" else None
        fbs.append({"source": source, "customer": cust, "patient_name": g.person()[0] if source == "patient" else None,
                    "contact_phone": g.mobile(), "product": g.pick(DRUGS)[0], "kind": kind,
                    "content": {"efficacy": "用药两周血压控制良好", "quality": "个别药片有裂片", "packaging": "说明书字体太小",
                                "supply": "医院断货一周", "service": "代表回访及时", "praise": "疗效好，感谢", "side_effect": "服药后出现皮疹"}[kind],
                    "response": "已回复并记录" if state in ("resolved", "closed") else None,
                    "received_on": iso(g.days_ago(1, 300)), "state": state, "owner": "service_agent"})
    add("23_feedback.yaml", "feedback", fbs, "Feedback from hospitals, patients and channels")
    devices = []
    for n in range(90):
        h = hospitals[n % 100]
        product = DEVICES[n % len(DEVICES)]
        installed = g.days_ago(30, 1200)
        devices.append({"serial_no": f"{product[1]}-{installed.year}-{n + 1:04d}", "product": product[0],
                        "hospital": h["name"], "department": g.pick(["放射科", "ICU", "心内科", "超声科", "急诊科"]),
                        "installed_on": iso(installed), "warranty_months": 24,
                        "next_maintenance_on": iso(g.days_ahead(5, 180)),
                        "status": "under_repair" if n % 13 == 0 else "in_use", "owner": "service_manager"})
    add("24_devices.yaml", "device", devices, "Installed medical devices")
    dso = []
    for n in range(150):
        d = devices[n % len(devices)]
        kind = "installation" if n < len(devices) // 2 and n % 2 == 0 else g.pick(["maintenance", "repair", "repair"])
        req = max(dt.date.fromisoformat(d["installed_on"]) - dt.timedelta(days=3) if kind == "installation" else g.days_ago(1, 300),
                  ANCHOR - dt.timedelta(days=1200))
        state = "closed" if req < ANCHOR - dt.timedelta(days=20) else g.pick(["new", "scheduled", "in_progress", "completed"])
        done = state in ("completed", "closed")
        dso.append({"kind": kind, "device": d["serial_no"], "hospital": d["hospital"],
                    "priority": "urgent" if kind == "repair" and n % 4 == 0 else "normal",
                    "fault": g.pick(["开机无显示", "图像伪影", "报警频繁", "探头损坏"]) if kind == "repair" else None,
                    "engineer": "field_engineer" if state != "new" else None, "requested_on": iso(req),
                    "scheduled_on": iso(req + dt.timedelta(days=2)) if state != "new" else None,
                    "completed_on": iso(min(ANCHOR, req + dt.timedelta(days=3))) if done else None,
                    "work_done": {"installation": "安装调试完成，已培训科室人员", "maintenance": "保养校准完成",
                                  "repair": "更换故障部件，测试正常"}[kind] if done else None,
                    "labour_hours": float(g.rng.randint(2, 12)) if done else None,
                    "parts_cost": g.money(0, 20000) if done and kind == "repair" else None,
                    "state": state, "owner": "service_manager"})
    add("25_device_service_orders.yaml", "device_service_order", dso, "Installation, maintenance and repair of devices")
    recs = []
    for n in range(40):
        h = hospitals[n * 2 % 120]
        chiefs = [ph for ph in physicians if ph["hospital"] == h["name"] and ph["title"] == "chief"]
        if not chiefs:
            continue
        ph = chiefs[0]
        options = [p for p in new_products if p[2] == ph["product_line"] and p[3] == "drug"]
        if not options:
            continue
        state = g.weighted([("listed", 4), ("submitted", 3), ("rejected", 1), ("draft", 1)])
        recs.append({"hospital": h["name"], "product": options[0][0], "physician": ph["name"],
                     "recommended_on": iso(g.days_ago(20, 300)), "reason": "临床需求明确，疗效优于现有药物",
                     "committee_date": iso(g.days_ago(1, 19)) if state in ("listed", "rejected") else None,
                     "decision_note": "药事会未通过，明年再议" if state == "rejected" else None,
                     "state": state, "owner": covered.get((h["name"], ph["product_line"]), "sales_manager")})
    add("26_drug_recommendations.yaml", "drug_recommendation", recs, "New drugs recommended by chief physicians")

    for old in OUT.glob("*.yaml"):
        old.unlink()
    for name, entity, recs_, header in files:
        write_seed(OUT, name, entity, recs_, header)
    print(f"{sum(len(r) for _, _, r, _ in files)} records in {len(files)} files")


if __name__ == "__main__":
    main()
