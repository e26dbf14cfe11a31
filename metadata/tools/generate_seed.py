"""Write metadata/seed/: the sample records of the standard CRM model.

A supplier of industrial equipment, automation and services and its Chinese business
customers: hundreds of customers, contacts, opportunities, orders, payments, tickets and
follow-ups, enough for every standard report and dashboard to say something. Run
`python3 metadata/tools/generate_seed.py`; the output is deterministic (see seedkit.py).

References to records whose title is assigned by the engine (autonumbered orders, quotes)
or is not unique are written as ids: on a fresh database the n-th seeded record of an entity
gets id n, because every record of an entity is seeded in one go, in file order.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seedkit import ANCHOR, CITIES, ROOTS, Gen, iso, stamp, write_seed  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "seed"
REPS = ["sales_rep", "sales_manager"]

CATEGORIES = [
    ("工业设备 / Industrial equipment", None, "压缩机、泵、风机等通用工业设备 / General industrial equipment"),
    ("自动化与控制 / Automation and controls", None, "PLC、变频器、传感器 / PLCs, drives, sensors"),
    ("电气产品 / Electrical products", None, "低压配电与电机 / Low-voltage distribution and motors"),
    ("配件与耗材 / Parts and consumables", None, "滤芯、密封件、润滑油 / Filters, seals, lubricants"),
    ("软件与服务 / Software and services", None, "运维服务、培训、软件许可 / Maintenance, training, licences"),
]
PRODUCTS = [  # code, name, category index, specification, unit, price
    ("EQ-AC-37", "螺杆空压机 37kW", 0, "37kW 0.8MPa 6.2m³/min", "台", 68000),
    ("EQ-AC-75", "螺杆空压机 75kW", 0, "75kW 0.8MPa 13.5m³/min", "台", 126000),
    ("EQ-PU-15", "离心水泵 15kW", 0, "DN100 扬程32m", "台", 18500),
    ("EQ-FN-22", "高效离心风机 22kW", 0, "风量 18000m³/h", "台", 32000),
    ("EQ-CH-200", "工业冷水机 200kW", 0, "制冷量 200kW R134a", "台", 158000),
    ("EQ-DR-10", "冷冻式干燥机", 0, "处理量 10m³/min", "台", 21000),
    ("AU-PLC-S7", "可编程控制器 PLC", 1, "CPU 1215C DC/DC/DC", "套", 6800),
    ("AU-VFD-30", "变频器 30kW", 1, "380V 30kW 矢量控制", "台", 9800),
    ("AU-VFD-90", "变频器 90kW", 1, "380V 90kW 矢量控制", "台", 26500),
    ("AU-HMI-10", "触摸屏 10寸", 1, "10.1寸 以太网", "台", 3200),
    ("AU-SEN-P", "压力变送器", 1, "0-1.6MPa 4-20mA", "只", 1150),
    ("AU-SEN-T", "温度变送器", 1, "PT100 -50~200℃", "只", 680),
    ("AU-SRV-2", "伺服系统 2kW", 1, "2kW 含电机与驱动器", "套", 8600),
    ("EL-MCC-01", "低压开关柜 MCC", 2, "GCS 抽屉式 630A", "面", 42000),
    ("EL-MTR-45", "高效电机 45kW", 2, "IE3 4极 380V", "台", 15800),
    ("EL-MTR-110", "高效电机 110kW", 2, "IE3 4极 380V", "台", 36800),
    ("EL-SS-75", "软启动器 75kW", 2, "380V 75kW", "台", 7400),
    ("EL-CAB-Y", "电力电缆 YJV", 2, "YJV-0.6/1kV 3x95+1x50", "米", 285),
    ("PT-FLT-AC", "空压机滤芯套件", 3, "空滤+油滤+油分", "套", 1850),
    ("PT-OIL-20", "合成压缩机油", 3, "20L/桶", "桶", 2600),
    ("PT-SEAL-K", "机械密封组件", 3, "适用DN100泵", "套", 1280),
    ("PT-BRG-63", "深沟球轴承 6310", 3, "6310-2RS", "只", 320),
    ("PT-BELT-B", "工业皮带", 3, "B型 B2000", "条", 96),
    ("SV-MNT-Y", "年度维保服务", 4, "每年4次上门保养", "年", 18000),
    ("SV-ENG-D", "节能诊断服务", 4, "现场测试+报告", "次", 12000),
    ("SV-TRN-D", "设备操作培训", 4, "1天 现场培训", "天", 3500),
    ("SV-SCADA", "能源监控软件许可", 4, "SCADA 100点位", "套", 45000),
    ("SV-RMT-Y", "远程监控服务", 4, "物联网远程监控 按年", "年", 6000),
]
INDUSTRIES = {
    "manufacturing": ["机械制造", "精密机械", "汽车零部件", "电机", "模具", "纺织", "食品", "包装材料", "塑胶制品"],
    "construction": ["建设工程", "建工", "路桥工程", "装配式建筑"],
    "energy": ["能源", "热电", "新能源", "燃气"],
    "logistics": ["物流", "港务", "冷链物流"],
    "wholesale_retail": ["机电设备贸易", "五金机电", "商贸"],
    "it": ["智能科技", "信息技术"],
    "healthcare": ["医药", "医疗器械"],
    "education": ["职业技术学院"],
    "government": ["水务", "市政设施管理"],
}
INDUSTRY_WEIGHTS = [("manufacturing", 50), ("construction", 10), ("energy", 9), ("logistics", 7),
                    ("wholesale_retail", 8), ("it", 5), ("healthcare", 5), ("education", 3),
                    ("government", 3)]
TITLES = [("总经理", "management"), ("副总经理", "management"), ("采购经理", "purchasing"),
          ("采购主管", "purchasing"), ("设备部经理", "technical"), ("设备主管", "technical"),
          ("技术总监", "technical"), ("生产厂长", "user"), ("电气工程师", "technical"),
          ("财务经理", "finance"), ("动力车间主任", "user"), ("项目经理", "user")]
ROLE_OF = {"management": "decision_maker", "purchasing": "purchasing", "technical": "technical",
           "user": "user", "finance": "influencer"}
DEPT = {"management": "总经办", "purchasing": "采购部", "technical": "设备部", "user": "生产部",
        "finance": "财务部"}


def main() -> None:
    g = Gen(20261120)
    files: list[tuple[str, str, list, str]] = []

    categories = [{"name": n, "description": d} for n, _, d in CATEGORIES]
    files.append(("01_product_categories.yaml", "product_category", categories,
                  "Product categories of the sample supplier."))
    products = [{"code": c, "name": n, "category": CATEGORIES[i][0], "specification": s,
                 "unit": u, "unit_price": float(p), "active": True,
                 "description": f"{n}（{s}）"} for c, n, i, s, u, p in PRODUCTS]
    products.append({"code": "EQ-AC-30-OLD", "name": "螺杆空压机 30kW（停产）", "category":
                     CATEGORIES[0][0], "specification": "30kW 老款", "unit": "台",
                     "unit_price": 52000.0, "active": False})
    files.append(("02_products.yaml", "product", products, "The price list."))

    # ---- customers: a few groups first (parents), then their subsidiaries and the rest
    customers, used = [], set()
    def company(industry: str) -> tuple[str, str, tuple]:
        for _ in range(500):
            city = g.pick(CITIES)
            root = g.pick(ROOTS)
            suffix = g.pick(INDUSTRIES[industry])
            tail = "有限公司" if industry not in ("education", "government") else ""
            if industry == "government":
                name = f"{city[0]}{suffix}管理处"
            elif industry == "education":
                name = f"{city[0]}{root[0]}{suffix}"
            else:
                name = f"{city[0]}{root[0]}{suffix}{tail}"
            if name not in used:
                used.add(name)
                return name, root[1] + city[1], city
        raise RuntimeError("ran out of company names")

    groups = []
    for root, code in ROOTS[:6]:
        name = f"{root}集团有限公司"
        used.add(name)
        groups.append(name)
        customers.append({"name": name, "code": f"G{len(customers) + 1:04d}", "tier": "a",
                          "key_account": True, "industry": "manufacturing", "source": "referral",
                          "region": "上海", "phone": g.landline(), "website": f"https://www.{code}group.com.cn",
                          "email": f"info@{code}group.com.cn", "credit_limit": 5000000.0,
                          "owner": "sales_manager", "notes": f"{root}集团总部 / Group headquarters"})
    for i in range(144):
        industry = g.weighted(INDUSTRY_WEIGHTS)
        name, domain, city = company(industry)
        tier = g.weighted([("a", 14), ("b", 36), ("c", 50)])
        parent = g.pick(groups) if i < 24 else None
        customers.append({
            "name": name, "code": f"C{len(customers) + 1:04d}",
            "tier": tier, "key_account": tier == "a" and g.rng.random() < 0.7,
            "industry": industry,
            "source": g.weighted([("referral", 20), ("exhibition", 20), ("website", 18),
                                  ("cold_call", 12), ("campaign", 12), ("partner", 10),
                                  ("advertising", 5), ("other", 3)]),
            "parent": parent, "region": city[0],
            "phone": g.landline(), "email": f"purchase@{domain}.com.cn",
            "website": f"https://www.{domain}.com.cn",
            "address": f"{city[0]}市经济技术开发区{g.pick(['创业', '兴业', '科技', '工业', '发展'])}路{g.rng.randint(1, 999)}号",
            "credit_limit": {"a": 2000000.0, "b": 500000.0, "c": 100000.0}[tier],
            "tax_id": f"91{g.rng.randint(1000, 9999)}{g.rng.randint(10**9, 10**10 - 1)}{i:02d}"[:18],
            "erp_code": f"K{100000 + len(customers) + 1}",
            "owner": g.weighted([("sales_rep", 65), ("sales_manager", 35)]),
        })
    files.append(("03_customers.yaml", "customer", customers,
                  "Customers: groups, their subsidiaries, and customers of every tier."))
    tier_of = {c["name"]: c["tier"] for c in customers}
    owner_of = {c["name"]: c["owner"] for c in customers}

    # ---- contacts
    contacts, contacts_of = [], {}
    for c in customers:
        count = {"a": g.rng.randint(3, 4), "b": g.rng.randint(2, 3), "c": g.rng.randint(1, 2)}[c["tier"]]
        for j in range(count):
            name, pinyin = g.person()
            title, kind = TITLES[j] if j < 2 else g.pick(TITLES[2:])
            domain = c["email"].split("@")[1]
            contacts.append({"customer": c["name"], "name": name, "title": title,
                             "department": DEPT[kind], "role_in_deal": ROLE_OF[kind],
                             "phone": g.mobile(), "email": f"{pinyin}@{domain}",
                             "wechat": f"wx_{pinyin.replace('.', '')}{g.rng.randint(10, 99)}",
                             "is_primary": j == 0, "owner": c["owner"]})
            contacts_of.setdefault(c["name"], []).append(len(contacts))
    files.append(("04_contacts.yaml", "contact", contacts, "Contacts: several per customer."))

    # ---- campaigns and their expenses
    campaign_specs = [
        ("2025 中国国际工业博览会（上海）/ CIIF 2025", "exhibition", 420, 396, 380000, "completed"),
        ("华东区节能改造技术研讨会 / Energy saving seminar, East", "seminar", 360, 359, 60000, "completed"),
        ("空压机以旧换新促销 / Compressor trade-in promotion", "promotion", 330, 240, 90000, "completed"),
        ("工业自动化线上直播月 / Automation webinar month", "webinar", 280, 250, 30000, "completed"),
        ("行业媒体广告投放 2026H1 / Trade media ads 2026 H1", "advertising", 320, 140, 150000, "completed"),
        ("华南客户答谢会 / Customer day, South China", "seminar", 200, 199, 80000, "completed"),
        ("2026 工博会（深圳）/ Industrial fair Shenzhen 2026", "exhibition", 120, 117, 260000, "completed"),
        ("数字化工厂邮件营销 / Digital factory email series", "email", 90, 30, 15000, "in_progress"),
        ("西部市场推广季 / West China roadshow", "seminar", 40, -20, 120000, "in_progress"),
        ("2027 春季新品发布会 / Spring 2027 launch", "seminar", -60, -62, 200000, "approved"),
        ("微信视频号推广 / WeChat Channels promotion", "social_media", -30, -120, 50000, "pending_approval"),
        ("2027 汉诺威工博会参展 / Hannover Messe 2027", "exhibition", -140, -145, 450000, "draft"),
    ]
    campaigns = []
    for name, kind, start_ago, end_ago, budget, status in campaign_specs:
        start = ANCHOR - dt.timedelta(days=start_ago)
        end = ANCHOR - dt.timedelta(days=end_ago)
        campaigns.append({"name": name, "kind": kind, "status": status, "start_date": iso(start),
                          "end_date": iso(end), "budget": float(budget),
                          "target_audience": "制造业设备部、采购部 / Plant engineering and purchasing",
                          "objective": "获取高质量线索，带动订单增长 / Quality leads that turn into orders",
                          "plan": f"{name}：目标客户邀约、现场演示、会后两周内逐一回访。/ Invite, demonstrate, follow every visitor up within two weeks.",
                          "expected_leads": g.rng.randint(20, 120),
                          "expected_revenue": float(budget * g.rng.randint(4, 10)),
                          "owner": "marketing"})
    files.append(("05_campaigns.yaml", "campaign", campaigns, "Marketing campaigns in every state."))
    live = [c for c in campaigns if c["status"] in ("completed", "in_progress")]

    claims = []
    for c in live:
        budget = c["budget"]
        left = budget * g.rng.uniform(0.75, 0.98)
        n = g.rng.randint(2, 5)
        for k in range(n):
            amount = round(left / n, -2)
            day = min(dt.date.fromisoformat(c["start_date"]) + dt.timedelta(days=k * 3), ANCHOR)
            state = "approved" if c["status"] == "completed" or k < n - 1 else \
                g.pick(["pending_approval", "draft"])
            claims.append({"campaign": c["name"], "category": g.pick(
                ["venue", "materials", "advertising", "travel", "catering"]), "amount": amount,
                "spent_on": iso(day), "state": state,
                "description": f"{c['name'].split(' / ')[0]} 费用报销 第{k + 1}笔 / expense {k + 1}",
                "owner": "marketing"})
    files.append(("06_expense_claims.yaml", "expense_claim", claims,
                  "Expense claims: the actual cost of the campaigns."))

    # ---- leads (no lead is left 'new': new leads get a follow-up from an automation)
    leads = []
    for i in range(90):
        industry = g.weighted(INDUSTRY_WEIGHTS)
        name, domain, city = company(industry)
        person, pinyin = g.person()
        status = g.weighted([("contacted", 30), ("qualified", 25), ("disqualified", 20),
                             ("converted", 25)])
        campaign = g.pick(live)["name"] if g.rng.random() < 0.5 else None
        leads.append({"company": name, "contact_name": person,
                      "contact_title": g.pick(["采购经理", "设备主管", "总经理", "技术总监"]),
                      "phone": g.mobile(), "email": f"{pinyin}@{domain}.com",
                      "source": "campaign" if campaign else g.pick(
                          ["website", "exhibition", "referral", "cold_call", "advertising"]),
                      "campaign": campaign, "industry": industry, "region": city[0],
                      "description": g.pick(["空压站节能改造需求", "新建车间需配套电气控制系统",
                                             "现有设备老化，计划更换", "咨询年度维保服务",
                                             "产线自动化升级"]) + " / " + g.pick(
                          ["energy saving retrofit", "new workshop", "replacing old machines",
                           "maintenance contract", "line automation"]),
                      "status": status,
                      "disqualify_reason": g.pick(["no_need", "no_budget", "unreachable",
                                                   "competitor"]) if status == "disqualified" else None,
                      "owner": g.pick(["marketing", "sales_rep"])})
    files.append(("07_leads.yaml", "lead", leads, "Leads from campaigns and other sources."))

    # ---- opportunities
    stages = [("won", 30), ("lost", 20), ("prospecting", 12), ("qualification", 14),
              ("proposal", 13), ("negotiation", 11)]
    probability = {"prospecting": 10.0, "qualification": 20.0, "proposal": 50.0,
                   "negotiation": 80.0, "won": 100.0, "lost": 0.0}
    deal_words = ["空压站节能改造", "产线自动化升级", "配电系统改造", "冷却水系统", "年度备件采购",
                  "新厂房动力设备", "电机能效提升", "年度维保合同", "智能监控平台", "设备更新"]
    opportunities, opp_names = [], set()
    weights = {"a": 6, "b": 3, "c": 1}
    pool = [c["name"] for c in customers for _ in range(weights[c["tier"]])]
    for i in range(260):
        customer = g.pick(pool)
        stage = g.weighted(stages)
        for _ in range(50):
            name = f"{customer.replace('有限公司', '')} {g.pick(deal_words)}"
            if name not in opp_names:
                break
            name = f"{name} {g.rng.randint(2, 9)}期"
            if name not in opp_names:
                break
        opp_names.add(name)
        if stage in ("won", "lost"):
            close = g.days_ago(5, 700)
            opened = close - dt.timedelta(days=g.rng.randint(20, 200))
        else:
            opened = g.days_ago(5, 200)
            close = g.days_ahead(10, 200)
        lines = []
        if g.rng.random() < 0.45:
            for _ in range(g.rng.randint(1, 3)):
                code, pname, _c, _s, _u, price = g.pick(PRODUCTS)
                lines.append({"product": pname, "quantity": g.rng.randint(1, 6),
                              "unit_price": float(price)})
            amount = sum(l["quantity"] * l["unit_price"] for l in lines)
        else:
            amount = g.money(30000, 1500000, 1000)
        campaign = g.pick(live)["name"] if g.rng.random() < 0.2 else None
        opportunities.append({
            "name": name, "customer": customer,
            "contact": g.pick(contacts_of[customer]),
            "campaign": campaign, "amount": amount, "probability": probability[stage],
            "opened_on": iso(opened), "close_date": iso(close), "stage": stage,
            "loss_reason": g.weighted([("price", 35), ("competitor", 25), ("product_fit", 10),
                                       ("delivery", 8), ("no_budget", 10), ("timing", 7),
                                       ("relationship", 5)]) if stage == "lost" else None,
            "competitor": g.pick(["阿特拉斯·科普柯", "英格索兰", "西门子", "ABB", "施耐德", "本地厂商"])
            if stage == "lost" else None,
            "lines": lines or None,
            "description": "客户现场已勘察，需求明确 / Site surveyed, needs clear" if stage != "prospecting" else None,
            "owner": owner_of[customer] if g.rng.random() < 0.8 else g.pick(REPS),
        })
    files.append(("08_opportunities.yaml", "opportunity", opportunities,
                  "Opportunities in every stage, won and lost ones with their dates."))
    opp_id = {o["name"]: i + 1 for i, o in enumerate(opportunities)}

    # ---- quotes
    quotes = []
    quote_states = {"proposal": ["draft", "pending_approval", "approved", "sent"],
                    "negotiation": ["sent", "approved"], "won": ["accepted"], "lost": ["declined"]}
    for o in opportunities:
        if o["stage"] not in quote_states or g.rng.random() > 0.45:
            continue
        state = g.pick(quote_states[o["stage"]])
        lines = []
        for _ in range(g.rng.randint(1, 4)):
            code, pname, _c, _s, _u, price = g.pick(PRODUCTS)
            discount = 18.0 if state == "pending_approval" else float(g.pick([0, 3, 5, 8, 10, 12, 15]))
            lines.append({"product": pname, "quantity": g.rng.randint(1, 5),
                          "unit_price": float(price), "discount": discount})
        quotes.append({"customer": o["customer"], "contact": o["contact"],
                       "opportunity": opp_id[o["name"]],
                       "valid_until": iso(dt.date.fromisoformat(o["close_date"]) + dt.timedelta(days=30)),
                       "lines": lines, "state": state, "owner": o["owner"],
                       "terms": "含税价，含运费；交货期合同签订后30天 / VAT and freight included; delivery 30 days after signing"})
    files.append(("09_quotes.yaml", "quote", quotes, "Quotes with lines and discounts."))

    # ---- orders: won deals plus repeat orders (purchase cycles), and their payments
    orders, payments = [], []
    addresses = {c["name"]: c.get("address") or f"{c['region']}市" for c in customers}
    won = [o for o in opportunities if o["stage"] == "won"]
    def order_for(customer, day, owner, opportunity=None, campaign=None):
        lines = []
        for _ in range(g.rng.randint(1, 4)):
            code, pname, _c, _s, _u, price = g.pick(PRODUCTS)
            lines.append({"product": pname, "quantity": g.rng.randint(1, 8),
                          "unit_price": float(price), "discount": float(g.pick([0, 0, 3, 5, 8]))})
        total = sum(l["quantity"] * l["unit_price"] * (1 - l["discount"] / 100) for l in lines)
        age = (ANCHOR - day).days
        if age > 120:
            state = g.weighted([("completed", 85), ("delivered", 10), ("cancelled", 5)])
        elif age > 45:
            state = g.weighted([("delivered", 45), ("completed", 35), ("shipped", 20)])
        else:
            state = g.weighted([("draft", 25), ("confirmed", 40), ("shipped", 35)])
        delivery = day + dt.timedelta(days=g.rng.randint(10, 45))
        orders.append({"customer": customer, "opportunity": opportunity, "campaign": campaign,
                       "kind": g.weighted([("order", 70), ("contract", 25), ("framework", 5)]),
                       "contract_no": f"HT{day.strftime('%Y%m')}{len(orders) + 1:04d}",
                       "order_date": iso(day), "signed_on": iso(day),
                       "delivery_date": iso(delivery), "shipping_address": addresses[customer],
                       "lines": lines, "state": state, "owner": owner})
        order_id = len(orders)
        paid_parts = {"completed": [1.0], "delivered": [0.3, 0.6], "shipped": [0.3],
                      "confirmed": [0.3] if g.rng.random() < 0.5 else []}.get(state, [])
        if state == "completed" and g.rng.random() < 0.5:
            paid_parts = [0.3, 0.6, 0.1]
        when = day
        for share in paid_parts:
            when = min(when + dt.timedelta(days=g.rng.randint(5, 40)), ANCHOR)
            payments.append({"customer": customer, "order": order_id, "campaign": campaign,
                             "amount": round(total * share, 2), "paid_on": iso(when),
                             "method": g.weighted([("bank_transfer", 70), ("acceptance_bill", 25),
                                                   ("cheque", 5)]),
                             "reference_no": f"BT{when.strftime('%Y%m%d')}{g.rng.randint(1000, 9999)}",
                             "owner": "finance"})
    for o in won:
        order_for(o["customer"], dt.date.fromisoformat(o["close_date"]), o["owner"],
                  opp_id[o["name"]], o["campaign"])
    for c in customers:
        repeat = {"a": g.rng.randint(2, 6), "b": g.rng.randint(0, 2), "c": g.rng.randint(0, 1)}[c["tier"]]
        cycle = g.rng.randint(45, 150)
        day = ANCHOR - dt.timedelta(days=cycle * repeat + g.rng.randint(-40, 90))
        for _ in range(repeat):
            day = day + dt.timedelta(days=cycle + g.rng.randint(-10, 10))
            if day > ANCHOR:
                break
            order_for(c["name"], day, c["owner"])
    files.append(("10_orders.yaml", "order", orders,
                  "Orders: every won deal, and repeat orders that show purchase cycles."))
    files.append(("11_payments.yaml", "payment", payments, "Payments collected against the orders."))

    # ---- service tickets
    tickets = []
    subjects = {"inquiry": ["咨询保养周期 / Maintenance interval", "询问配件价格 / Spare part price",
                            "咨询节能改造方案 / Energy saving options", "索取产品说明书 / Manual request"],
                "complaint": ["交货延迟 / Late delivery", "安装人员未按时到场 / Installer late",
                              "设备噪音偏大 / Machine too loud", "发票信息错误 / Wrong invoice"],
                "repair": ["空压机高温停机 / Compressor overheating", "变频器报过流故障 / Drive overcurrent fault",
                           "水泵漏水 / Pump leaking", "电机异响 / Motor noise", "触摸屏黑屏 / HMI blank"]}
    hours = {"urgent": 4, "high": 8, "normal": 48, "low": 48}
    for i in range(120):
        customer = g.pick(pool)
        kind = g.weighted([("repair", 50), ("inquiry", 30), ("complaint", 20)])
        priority = g.weighted([("normal", 55), ("high", 25), ("urgent", 12), ("low", 8)])
        logged = g.days_ago(0, 360)
        logged_at = dt.datetime.combine(logged, dt.time(g.rng.randint(1, 10)))
        due = logged_at + dt.timedelta(hours=hours[priority])
        if (ANCHOR - logged).days > 20:
            state = g.weighted([("closed", 70), ("resolved", 20), ("escalated", 5), ("in_progress", 5)])
        else:
            state = g.weighted([("new", 20), ("assigned", 25), ("in_progress", 25), ("resolved", 20),
                                ("closed", 10)])
        resolved = None
        if state in ("resolved", "closed"):
            late = g.rng.random() < 0.18
            resolved = due + dt.timedelta(hours=g.rng.randint(1, 30)) if late else \
                logged_at + dt.timedelta(hours=g.rng.uniform(0.5, hours[priority] * 0.9))
        tickets.append({
            "subject": g.pick(subjects[kind]), "customer": customer,
            "contact": g.pick(contacts_of[customer]),
            "product": g.pick(PRODUCTS)[1] if kind != "complaint" else None,
            "kind": kind, "priority": priority,
            "channel": g.weighted([("phone", 50), ("email", 15), ("web", 15), ("chat", 15), ("onsite", 5)]),
            "sla_due_at": due.strftime("%Y-%m-%dT%H:%M:00Z"),
            "assignee": None if state == "new" else g.pick(["service_agent", "service_manager"]),
            "description": "客户来电反映：" + g.pick(subjects[kind]).split(" / ")[0] + "，请尽快处理。",
            "resolution": "已上门检查并处理，设备恢复正常 / Fixed on site" if resolved else None,
            "resolved_at": resolved.strftime("%Y-%m-%dT%H:%M:00Z") if resolved else None,
            "satisfaction": g.weighted([(5, 45), (4, 35), (3, 12), (2, 6), (1, 2)]) if state == "closed" else None,
            "state": state, "owner": g.pick(["service_agent", "service_manager"]),
        })
    files.append(("12_tickets.yaml", "ticket", tickets,
                  "Service tickets: inquiries, complaints and repairs, in and out of SLA."))

    # ---- follow-up activities
    activities = []
    subjects = {"call": "电话回访 / Follow-up call", "visit": "上门拜访 / Customer visit",
                "email": "发送技术资料 / Send documents", "meeting": "方案评审会 / Solution review",
                "task": "准备报价 / Prepare a quote"}
    for i in range(480):
        kind = g.weighted([("call", 35), ("visit", 25), ("email", 15), ("meeting", 10), ("task", 15)])
        opp = g.pick(opportunities) if g.rng.random() < 0.6 else None
        customer = opp["customer"] if opp else g.pick(pool)
        if g.rng.random() < 0.82:
            day = g.days_ago(1, 600)
            done = g.rng.random() < 0.93
        else:
            day = g.days_ahead(0, 30)
            done = False
        activities.append({
            "subject": f"{subjects[kind]} - {customer.replace('有限公司', '')}", "kind": kind,
            "due_at": stamp(day, g.rng.randint(1, 9)), "done": done,
            "customer": customer, "contact": g.pick(contacts_of[customer]),
            "opportunity": opp_id[opp["name"]] if opp else None,
            "description": g.pick(["了解设备运行情况和下一步采购计划", "介绍新品和节能方案",
                                   "确认技术参数", "商务条件沟通", "回访上次服务满意度"]),
            "outcome": g.pick(["客户有意向，约定下周提交方案 / Interested, proposal next week",
                               "已发资料，待客户反馈 / Documents sent", "客户暂无需求 / No need now",
                               "确认预算，进入报价 / Budget confirmed"]) if done else None,
            "owner": opp["owner"] if opp else owner_of[customer],
        })
    files.append(("13_activities.yaml", "activity", activities,
                  "Follow-ups: calls, visits, emails, meetings and tasks, past and planned."))

    articles = [
        ("空压机日常保养要点 / Daily compressor care", "faq", "螺杆空压机 37kW"),
        ("空压机高温停机的常见原因 / Why compressors overheat", "troubleshooting", "螺杆空压机 75kW"),
        ("变频器过流故障排查 / Drive overcurrent faults", "troubleshooting", "变频器 30kW"),
        ("PLC 程序备份方法 / Backing up PLC programs", "faq", "可编程控制器 PLC"),
        ("高效电机选型指南 / Choosing an IE3 motor", "product", "高效电机 45kW"),
        ("冷水机组冬季防冻 / Chillers in winter", "faq", "工业冷水机 200kW"),
        ("售后服务政策（2026版）/ Service policy 2026", "policy", None),
        ("质保范围与期限 / What the warranty covers", "policy", None),
        ("水泵机械密封更换步骤 / Replacing a pump seal", "troubleshooting", "离心水泵 15kW"),
        ("能源监控软件快速入门 / SCADA quick start", "product", "能源监控软件许可"),
        ("压力变送器接线说明 / Wiring a pressure transmitter", "product", "压力变送器"),
        ("远程监控服务开通流程 / Starting remote monitoring", "faq", "远程监控服务"),
    ]
    kb = [{"title": t, "category": c, "product": p, "keywords": t.split(" / ")[0][:20],
           "body": f"{t}\n\n1. 检查设备运行记录。\n2. 按说明书步骤操作。\n3. 如有疑问请联系400服务热线。\n\n"
                   "1. Check the machine's log. 2. Follow the manual. 3. Call the service hotline.",
           "published": True, "owner": "service_manager"} for t, c, p in articles]
    files.append(("14_kb_articles.yaml", "kb_article", kb, "Knowledge base articles."))

    for name, entity, records, header in files:
        write_seed(OUT, name, entity, records, header)
        print(f"{name}: {len(records)} {entity} records")


if __name__ == "__main__":
    main()
