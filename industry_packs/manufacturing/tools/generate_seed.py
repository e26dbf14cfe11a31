"""Write industry_packs/manufacturing/seed/: the manufacturing pack's sample records.

A Chinese maker of construction machinery, power equipment, chemicals, steel and vehicles:
its branch offices, dealers and 4S dealerships, design institutes and utilities, individual
buyers, tenders, samples, special prices, annual plans, installed equipment, service work
orders, maintenance contracts and call-centre calls. It adds to the standard model's sample
data (metadata/seed/), which is loaded first. Run
`python3 industry_packs/manufacturing/tools/generate_seed.py` after the standard generator;
the output is deterministic.

Records with engine-assigned titles are referenced by id: the n-th seeded record of an entity
gets id n on a fresh database, and this layer's records of an entity follow the standard
layer's, so the ids here start after the standard seed's count (read from its files).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "metadata" / "tools"))
from seedkit import ANCHOR, CITIES, ROOTS, Gen, iso, stamp, write_seed  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "seed"
STANDARD = ROOT / "metadata" / "seed"
SELLERS = ["key_account_manager", "channel_manager", "sales_rep", "sales_manager"]


def standard_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in sorted(STANDARD.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        counts[doc["entity"]] = counts.get(doc["entity"], 0) + len(doc["records"])
    return counts


class Ids:
    """The id each seeded record of an entity will get."""

    def __init__(self, offsets: dict[str, int]):
        self.offsets = offsets

    def of(self, entity: str, index: int) -> int:
        return self.offsets.get(entity, 0) + index + 1


BRANCHES = [("上海总部", "HQ", "headquarters", "east", "上海"), ("北京办事处", "BJ", "sales_service", "north", "北京"),
            ("广州办事处", "GZ", "sales_service", "south", "广州"), ("成都办事处", "CD", "sales_service", "southwest", "成都"),
            ("武汉办事处", "WH", "sales_service", "central", "武汉"), ("西安办事处", "XA", "sales_service", "northwest", "西安"),
            ("沈阳办事处", "SY", "sales_service", "northeast", "沈阳"), ("济南服务站", "JN", "service", "north", "济南"),
            ("长沙办事处", "CS", "sales", "central", "长沙"), ("苏州备件中心库", "SZW", "warehouse", "east", "苏州")]
REGION_BRANCH = {"east": "上海总部", "north": "北京办事处", "south": "广州办事处", "southwest": "成都办事处",
                 "central": "武汉办事处", "northwest": "西安办事处", "northeast": "沈阳办事处"}
CATEGORIES = ["工程机械 / Construction machinery", "起重机械 / Lifting machinery",
              "输变电设备 / Power transmission equipment", "化工材料 / Chemicals",
              "钢材 / Steel products", "商用车 / Commercial vehicles", "电子电器 / Electronics and appliances",
              "机械备件 / Machinery spare parts"]
# code, name, category, type, spec, unit, price, monthly capacity, serial tracked
PRODUCTS = [
    ("XE215", "挖掘机 XE215", 0, "machine", "21.5t 斗容1.0m³", "台", 780000, 120, True),
    ("XE370", "挖掘机 XE370", 0, "machine", "37t 斗容1.8m³", "台", 1350000, 40, True),
    ("LW500", "装载机 LW500", 0, "machine", "额定载重5t", "台", 420000, 90, True),
    ("XS203", "压路机 XS203", 0, "machine", "20t 单钢轮", "台", 380000, 30, True),
    ("HB52", "混凝土泵车 HB52", 0, "machine", "臂长52m", "台", 3200000, 8, True),
    ("XR280", "旋挖钻机 XR280", 0, "machine", "最大钻深86m", "台", 4100000, 6, True),
    ("QY25", "汽车起重机 QY25", 1, "machine", "25t 五节臂", "台", 1150000, 25, True),
    ("QY50", "汽车起重机 QY50", 1, "machine", "50t 五节臂", "台", 2300000, 12, True),
    ("S13-1000", "油浸式变压器 S13-1000kVA", 2, "machine", "10kV/0.4kV 1000kVA", "台", 168000, 60, True),
    ("SCB13-2000", "干式变压器 SCB13-2000kVA", 2, "machine", "10kV/0.4kV 2000kVA", "台", 265000, 40, True),
    ("YBM-630", "箱式变电站 YBM-630", 2, "machine", "10kV 630kVA", "台", 320000, 30, True),
    ("KYN28", "高压开关柜 KYN28", 2, "component", "12kV 1250A", "面", 95000, 150, False),
    ("HXGN-12", "环网柜 HXGN-12", 2, "component", "12kV 630A", "面", 58000, 120, False),
    ("E51", "环氧树脂 E-51", 3, "material", "环氧值0.51", "吨", 21000, 800, False),
    ("PU-200", "聚氨酯预聚体 PU-200", 3, "material", "NCO 4.2%", "吨", 28000, 500, False),
    ("AD-W30", "水性涂料助剂 W30", 3, "material", "分散剂", "吨", 36000, 200, False),
    ("EP-AC", "重防腐环氧涂料", 3, "material", "双组分 C5-M", "吨", 32000, 300, False),
    ("Q235B", "热轧卷板 Q235B", 4, "material", "3.0-12mm", "吨", 3900, 30000, False),
    ("SPCC", "冷轧板 SPCC", 4, "material", "0.5-2.0mm", "吨", 4600, 18000, False),
    ("DX51D", "镀锌板 DX51D", 4, "material", "Z80 0.8mm", "吨", 5200, 12000, False),
    ("Q345R", "容器板 Q345R", 4, "material", "16-60mm", "吨", 4800, 8000, False),
    ("HT-6X4", "重型牵引车 6x4", 5, "machine", "560马力 国六", "台", 368000, 200, True),
    ("LT-4X2", "轻型卡车 4x2", 5, "machine", "4.2m货箱 国六", "台", 128000, 400, True),
    ("EV-L3", "电动物流车 EV-L3", 5, "machine", "续航260km", "台", 168000, 300, True),
    ("AC-15", "变频空调 1.5匹", 6, "machine", "一级能效 挂机", "台", 3299, 20000, True),
    ("PV-50K", "光伏逆变器 50kW", 6, "machine", "三相 50kW", "台", 18000, 1500, True),
    ("EM-3P", "智能电表 三相", 6, "component", "0.5S级", "只", 380, 50000, False),
    ("SP-PUMP", "液压主泵", 7, "spare_part", "XE215/XE370适用", "件", 86000, 200, True),
    ("SP-SWING", "回转马达", 7, "spare_part", "XE215适用", "件", 32000, 150, False),
    ("SP-TEETH", "斗齿套件", 7, "spare_part", "5齿一套", "套", 2800, 3000, False),
    ("SP-HFILTER", "液压油滤芯", 7, "spare_part", "回油滤芯", "只", 680, 10000, False),
    ("SP-OFILTER", "发动机机油滤清器", 7, "spare_part", "通用", "只", 260, 20000, False),
    ("SP-TRACK", "履带板总成", 7, "spare_part", "600mm", "套", 12000, 400, False),
    ("SP-BUSH", "变压器套管", 7, "spare_part", "10kV", "只", 3600, 1000, False),
    ("SP-ACCOMP", "空调压缩机", 7, "spare_part", "1.5匹适用", "台", 1200, 5000, False),
    ("SV-INSTALL", "整机安装调试服务", 0, "service", "含调试与培训", "次", 8000, None, False),
    ("SV-MAINT", "年度保养套餐", 0, "service", "每年4次保养", "年", 24000, None, False),
]
PNAME = {p[0]: p[1] for p in PRODUCTS}
PRICE = {p[0]: p[6] for p in PRODUCTS}
MACHINES = ["XE215", "XE370", "LW500", "XS203", "HB52", "XR280", "QY25", "QY50", "HT-6X4", "LT-4X2"]
POWER = ["S13-1000", "SCB13-2000", "YBM-630", "KYN28", "HXGN-12", "PV-50K", "EM-3P"]
CHEM = ["E51", "PU-200", "AD-W30", "EP-AC"]
STEEL = ["Q235B", "SPCC", "DX51D", "Q345R"]
RETAIL = ["AC-15", "PV-50K", "EV-L3", "LT-4X2"]
SPARES = ["SP-PUMP", "SP-SWING", "SP-TEETH", "SP-HFILTER", "SP-OFILTER", "SP-TRACK", "SP-BUSH"]


def main() -> None:
    g = Gen(4004)
    ids = Ids(standard_counts())
    files = []

    def add(name, entity, records, header):
        files.append((name, entity, records, header))

    add("01_branch_offices.yaml", "branch_office",
        [{"name": n, "code": c, "kind": k, "region": r, "city": city, "phone": g.landline(),
          "address": f"{city}市{g.pick(['高新区', '经开区', '工业园区'])}{g.pick(['长江', '黄河', '泰山', '珠江'])}路{g.rng.randint(1, 300)}号"}
         for n, c, k, r, city in BRANCHES], "Branch offices, service stations and the parts warehouse.")
    add("02_product_categories.yaml", "product_category",
        [{"name": c, "description": "制造业产品线 / Manufacturing product line"} for c in CATEGORIES],
        "Product lines of the manufacturer.")
    products = []
    for code, name, cat, kind, spec, unit, price, capacity, serial in PRODUCTS:
        stock = None if kind == "service" else g.rng.randint(0, 60) if kind in ("machine", "component") \
            else g.rng.randint(50, 3000)
        products.append({"code": f"MF-{code}", "name": name, "category": CATEGORIES[cat],
                         "product_type": kind, "specification": spec, "unit": unit,
                         "unit_price": float(price), "serial_tracked": serial,
                         "warranty_months": 24 if kind == "machine" else 12,
                         "lead_time_days": g.pick([7, 15, 30, 45, 60]) if kind != "service" else None,
                         "monthly_capacity": capacity, "erp_code": f"M{100000 + len(products)}",
                         "erp_stock": stock,
                         "erp_available": None if stock is None else max(0, stock - g.rng.randint(0, 20)),
                         "erp_synced_at": stamp(ANCHOR, 2) if stock is not None else None,
                         "description": f"{name}（{spec}）"})
    add("03_products.yaml", "product", products, "Machines, power equipment, materials, vehicles, spares.")

    # ---- customers of every kind
    customers, used = [], set()
    def new_name(pattern):
        for _ in range(500):
            city = g.pick(CITIES)
            root = g.pick(ROOTS)
            name = pattern.format(city=city[0], root=root[0])
            if name not in used:
                used.add(name)
                return name, city, root[1] + city[1]
        raise RuntimeError(pattern)
    def customer(kind, pattern, industry, tier_weights, **extra):
        name, city, domain = new_name(pattern)
        tier = g.weighted(tier_weights)
        record = {"name": name, "code": f"M{len(customers) + 1:04d}", "customer_kind": kind,
                  "tier": tier, "key_account": tier == "a" and g.rng.random() < 0.6,
                  "industry": industry, "source": g.pick(["referral", "exhibition", "website", "partner", "cold_call"]),
                  "region": city[0], "branch": REGION_BRANCH[city[2]],
                  "phone": g.landline(), "email": f"info@{domain}.com.cn",
                  "address": f"{city[0]}市{g.pick(['高新区', '经开区', '工业园区', '新区'])}{g.rng.randint(1, 999)}号",
                  "credit_limit": {"a": 3000000.0, "b": 800000.0, "c": 200000.0}[tier],
                  "erp_code": f"MK{200000 + len(customers)}",
                  "owner": extra.pop("owner", g.pick(SELLERS))}
        record.update(extra)
        customers.append(record)
        return record
    dealers, agents, institutes, utilities, epcs, oems, enterprises, individuals = ([] for _ in range(8))
    for i in range(20):
        dealers.append(customer("dealer", "{city}{root}工程机械销售有限公司", "wholesale_retail",
                                [("a", 30), ("b", 50), ("c", 20)], dealer_level=g.pick(["tier1", "tier2", "tier2"]),
                                authorised_service=i % 3 != 2, dealer_territory=None, owner="channel_manager"))
        dealers[-1]["dealer_territory"] = f"{dealers[-1]['region']}及周边地市"
    for i in range(6):
        dealers.append(customer("dealer", "{city}{root}汽车销售服务有限公司", "wholesale_retail",
                                [("a", 40), ("b", 60)], dealer_level="dealer_4s", authorised_service=True,
                                owner="channel_manager"))
        dealers[-1]["dealer_territory"] = f"{dealers[-1]['region']}市区"
    for i in range(4):
        dealers.append(customer("dealer", "{city}{root}电器专卖店", "wholesale_retail", [("b", 40), ("c", 60)],
                                dealer_level="retail_outlet", owner="channel_manager"))
        dealers[-1]["dealer_territory"] = f"{dealers[-1]['region']}零售"
    for i in range(6):
        agents.append(customer("agent", "{city}{root}机电设备代理有限公司", "wholesale_retail",
                               [("b", 60), ("c", 40)], dealer_level="tier2", authorised_service=i % 2 == 0,
                               owner="channel_manager"))
        agents[-1]["dealer_territory"] = f"{agents[-1]['region']}电力、化工行业"
    for pattern in ["{city}电力设计院有限公司", "{city}{root}工程设计研究院", "{city}市政工程设计院",
                    "{city}化工设计院有限公司"] * 2:
        institutes.append(customer("design_institute", pattern, "construction", [("a", 40), ("b", 60)]))
    for pattern in ["国网{city}供电公司", "{city}{root}热电有限公司", "{city}水务集团有限公司",
                    "{city}{root}新能源发电有限公司"] * 2:
        utilities.append(customer("utility", pattern, "energy", [("a", 60), ("b", 40)],
                                  owner="key_account_manager"))
    for i in range(6):
        epcs.append(customer("epc_contractor", "中国{root}建设工程{city}有限公司", "construction",
                             [("a", 50), ("b", 50)], owner="key_account_manager"))
    for i in range(8):
        oems.append(customer("oem", "{city}{root}重工有限公司", "manufacturing", [("a", 40), ("b", 60)]))
    patterns = [("{city}{root}钢铁有限公司", "manufacturing"), ("{city}{root}化工有限公司", "manufacturing"),
                ("{city}{root}矿业有限公司", "energy"), ("{city}{root}建设集团有限公司", "construction"),
                ("{city}{root}汽车零部件有限公司", "manufacturing"), ("{city}{root}物流有限公司", "logistics"),
                ("{city}{root}涂料有限公司", "manufacturing"), ("{city}{root}压力容器有限公司", "manufacturing")]
    for i in range(40):
        pattern, industry = patterns[i % len(patterns)]
        enterprises.append(customer("enterprise", pattern, industry, [("a", 15), ("b", 35), ("c", 50)]))
    for i in range(15):
        person, _ = g.person(three_chars=True)
        city = g.pick(CITIES)
        used.add(person)
        customers.append({"name": f"{person}（个人）", "code": f"M{len(customers) + 1:04d}",
                          "customer_kind": "individual", "tier": "c", "industry": "other",
                          "source": g.pick(["referral", "website", "exhibition"]), "region": city[0],
                          "branch": REGION_BRANCH[city[2]], "phone": g.mobile(),
                          "id_card_last4": f"{g.rng.randint(0, 9999):04d}",
                          "notes": g.pick(["个体挖掘机车主 / Owner-operator of an excavator",
                                           "个体运输户 / Self-employed haulier",
                                           "家装用户 / Home owner"]),
                          "owner": "sales_rep"})
        individuals.append(customers[-1])
    add("04_customers.yaml", "customer", customers,
        "Dealers, 4S dealerships, agents, design institutes, utilities, EPC contractors, OEMs, "
        "end users and individuals.")
    all_dealers = dealers + agents
    service_dealers = [d for d in all_dealers if d.get("authorised_service")]

    contacts, contacts_of = [], {}
    titles = [("总经理", "decision_maker", "总经办"), ("采购部长", "purchasing", "采购部"),
              ("设备处长", "technical", "设备处"), ("总工程师", "technical", "技术部"),
              ("项目经理", "user", "项目部"), ("服务经理", "user", "服务部")]
    for c in customers:
        if c["customer_kind"] == "individual":
            continue
        for j in range(g.rng.randint(1, 3)):
            name, pinyin = g.person(three_chars=True)
            title, role, dept = titles[j] if j < 2 else g.pick(titles[2:])
            contacts.append({"customer": c["name"], "name": name, "title": title, "department": dept,
                             "role_in_deal": role, "phone": g.mobile(),
                             "email": f"{pinyin}@{c['email'].split('@')[1]}", "is_primary": j == 0,
                             "owner": c["owner"]})
            contacts_of.setdefault(c["name"], []).append(ids.of("contact", len(contacts) - 1))
    add("05_contacts.yaml", "contact", contacts, "Contacts of the pack's customers.")

    agreements = []
    for d in all_dealers:
        start = g.days_ago(60, 500)
        kind = {"dealer_4s": "dealer_4s", "retail_outlet": "distributor"}.get(d.get("dealer_level"),
                                                                              "agent" if d["customer_kind"] == "agent" else "distributor")
        end = start + dt.timedelta(days=365 * g.pick([1, 2, 3]))
        state = "active" if end > ANCHOR else "expired"
        if g.rng.random() < 0.1:
            state = "pending_approval"
        agreements.append({"dealer": d["name"], "kind": kind,
                           "level": "tier1" if d.get("dealer_level") == "tier1" else "tier2",
                           "territory": d["dealer_territory"],
                           "product_lines": g.pick(["工程机械全系列", "挖掘机、装载机", "商用车", "家用空调、光伏",
                                                    "变压器、开关柜"]),
                           "branch": d["branch"], "start_date": iso(start), "end_date": iso(end),
                           "annual_target": g.money(3000000, 60000000, 100000),
                           "deposit": g.money(100000, 1000000, 10000), "rebate": float(g.pick([1, 2, 3, 5])),
                           "authorised_service": ["installation", "maintenance", "repair", "warranty"]
                           if d.get("authorised_service") else None,
                           "included_visits": g.pick([2, 4, 6]) if d.get("authorised_service") else 0,
                           "service_fee_per_visit": 800.0 if d.get("authorised_service") else None,
                           "state": state, "owner": "channel_manager"})
    add("06_dealer_agreements.yaml", "dealer_agreement", agreements,
        "Dealer, agent and 4S agreements, with authorised service and included maintenance visits.")

    plans = [{"name": f"{ANCHOR.year}年度市场计划 / {ANCHOR.year} marketing plan", "year": ANCHOR.year,
              "total_budget": 3600000.0, "state": "approved", "owner": "marketing_manager",
              "objectives": "品牌认知度提升10个百分点；线索1500条；市场活动带动订单2亿元 / +10 points brand awareness; 1,500 leads; CNY 200m orders from campaigns"},
             {"name": f"{ANCHOR.year + 1}年度市场计划 / {ANCHOR.year + 1} marketing plan", "year": ANCHOR.year + 1,
              "total_budget": 4200000.0, "state": "draft", "owner": "marketing_manager",
              "objectives": "拓展西部及海外市场 / Grow in the west and abroad"}]
    add("07_marketing_plans.yaml", "marketing_plan", plans, "Annual marketing plans.")
    campaign_specs = [
        ("2026 bauma China 工程机械展 / bauma China 2026", "exhibition", "national", 300, 296, 900000, "completed"),
        ("西南区设计院技术交流会 / Design institute seminar, Southwest", "seminar", "southwest", 260, 259, 120000, "completed"),
        ("华北经销商年会 / Dealer convention, North", "seminar", "north", 230, 228, 260000, "completed"),
        ("电力设备巡展（华东）/ Power equipment roadshow, East", "seminar", "east", 200, 170, 180000, "completed"),
        ("挖掘机以旧换新 / Excavator trade-in", "promotion", "national", 160, 70, 400000, "completed"),
        ("重防腐涂料线上推介 / Anti-corrosion coatings webinar", "webinar", "national", 120, 119, 40000, "completed"),
        ("秋季家电促销（零售终端）/ Autumn appliance promotion", "promotion", "south", 80, 20, 220000, "completed"),
        ("新能源工程车推广季 / New-energy trucks season", "advertising", "east", 45, -30, 350000, "in_progress"),
        ("东北冬季保养关爱行动 / Winter service campaign, Northeast", "promotion", "northeast", 20, -40, 90000, "in_progress"),
        ("2027 春季订货会 / Spring 2027 order fair", "exhibition", "national", -100, -103, 600000, "draft"),
    ]
    campaigns = []
    for name, kind, region, start_ago, end_ago, budget, status in campaign_specs:
        before = float(g.rng.randint(20, 45))
        done = status == "completed"
        campaigns.append({"name": name, "kind": kind, "marketing_plan": plans[0 if status != "draft" else 1]["name"],
                          "region": region, "channels": g.rng.sample(["exhibition", "seminar", "dealer_event",
                                                                      "trade_media", "online", "site_demo"], 2),
                          "status": status, "start_date": iso(ANCHOR - dt.timedelta(days=start_ago)),
                          "end_date": iso(ANCHOR - dt.timedelta(days=end_ago)), "budget": float(budget),
                          "target_audience": "设备采购决策人、经销商 / Equipment buyers and dealers",
                          "objective": "提升品牌认知，获取项目线索 / Brand awareness and project leads",
                          "plan": f"{name}：邀约目标客户，安排现场演示与技术交流，会后两周内回访 / invite, demonstrate, follow up within two weeks",
                          "expected_leads": g.rng.randint(30, 200), "expected_revenue": float(budget * 20),
                          "brand_awareness_before": before if done else None,
                          "brand_awareness_after": before + g.rng.randint(-2, 15) if done else None,
                          "regional_order_growth": float(g.rng.randint(-5, 35)) if done else None,
                          "evaluation_score": g.weighted([(5, 3), (4, 5), (3, 2)]) if done else None,
                          "evaluation": "活动后三个月区域订单明显增长，经销商反馈良好 / Orders in the region grew in the three months after; dealers liked it" if done else None,
                          "owner": "marketing_manager"})
    add("08_campaigns.yaml", "campaign", campaigns, "Campaigns of the annual marketing plan, with their evaluation.")
    live = [c for c in campaigns if c["status"] in ("completed", "in_progress")]
    claims = []
    for c in live:
        n = g.rng.randint(2, 4)
        share = g.rng.uniform(0.7, 0.97)
        for k in range(n):
            day = min(dt.date.fromisoformat(c["start_date"]) + dt.timedelta(days=k * 5), ANCHOR)
            claims.append({"campaign": c["name"], "category": g.pick(["venue", "materials", "advertising", "travel", "catering"]),
                           "amount": round(c["budget"] * share / n, -2), "spent_on": iso(day),
                           "state": "approved" if c["status"] == "completed" or k < n - 1 else "pending_approval",
                           "description": f"{c['name'].split(' / ')[0]} 第{k + 1}笔费用 / expense {k + 1}",
                           "owner": "marketing"})
    add("09_expense_claims.yaml", "expense_claim", claims, "Expenses of the pack's campaigns.")

    surveys = [("2026 品牌认知度调查 / Brand awareness 2026", "brand_awareness", campaigns[0]["name"], "open"),
               ("新一代电动挖掘机需求调研 / Electric excavator research", "product_research", None, "closed"),
               ("经销商年会满意度 / Dealer convention feedback", "campaign_feedback", campaigns[2]["name"], "closed"),
               ("售后服务满意度（季度）/ Service satisfaction (quarterly)", "satisfaction", None, "open"),
               ("化工客户用量调研 / Chemical customers' usage", "market_research", None, "draft")]
    add("10_surveys.yaml", "survey",
        [{"title": t, "purpose": p, "campaign": c,
          "product_category": CATEGORIES[0] if p == "product_research" else None,
          "questions": "1. 您是否了解本品牌？\n2. 未来12个月的采购计划？\n3. 对产品最关注的性能？\n4. 综合评分（1-5）\n"
                       "1. Do you know our brand? 2. Purchase plans for the next 12 months? 3. What matters most? 4. Overall score (1-5)",
          "target_responses": 100, "state": s,
          "findings": "电动化需求集中在市政与隧道工况；客户最关注续航与充电时间 / Demand for electric machines comes from "
                      "municipal and tunnel work; range and charging time matter most" if s == "closed" else None,
          "owner": "marketing"} for t, p, c, s in surveys], "Surveys and market research.")
    responses = []
    for i in range(130):
        survey = surveys[i % 4]
        c = g.pick(enterprises + utilities + oems + dealers)
        name, _ = g.person(three_chars=True)
        responses.append({"survey": survey[0], "respondent": name, "customer": c["name"],
                          "score": g.weighted([(5, 30), (4, 40), (3, 20), (2, 7), (1, 3)]),
                          "aware_of_brand": g.rng.random() < 0.62, "purchase_intent": g.rng.random() < 0.3,
                          "answers": g.pick(["关注油耗和可靠性 / fuel use and reliability", "关注售后响应速度 / service response",
                                             "希望提供融资租赁 / wants leasing", "关注电动化产品 / electric machines"]),
                          "product_feedback": g.pick([None, "希望增加驾驶室空调功率", "建议延长保养周期", "配件价格偏高"])})
    add("11_survey_responses.yaml", "survey_response", responses, "Answers to the surveys.")

    bulletins = [("2026年第四季度经销商返利政策 / Q4 dealer rebate policy", "policy"),
                 ("钢材价格上调通知（11月）/ Steel price rise in November", "price"),
                 ("XE370 国四版上市 / XE370 stage IV launched", "product"),
                 ("年度服务技能大赛报名 / Service skills contest", "training"),
                 ("春节期间发货安排 / Shipping over Spring Festival", "notice"),
                 ("大客户报价统一由报价中心出具 / All key-account quotes from the pricing desk", "policy"),
                 ("新一代智能电表认证完成 / New smart meter certified", "product"),
                 ("2027 订货会筹备通知 / Preparing the 2027 order fair", "notice")]
    add("12_bulletins.yaml", "bulletin",
        [{"title": t, "category": c, "audience": ["sales", "dealers"] if i % 2 == 0 else ["sales"],
          "body": f"{t}\n\n请各区域营销人员及经销商知悉并执行。/ For every salesperson and dealer to note and apply.",
          "published_on": iso(g.days_ago(3, 200)) if i < 6 else None,
          "state": "published" if i < 6 else "draft", "owner": "sales_manager"} for i, (t, c) in enumerate(bulletins)],
        "Bulletins to the sales force and the dealers.")
    add("13_discount_policies.yaml", "discount_policy",
        [{"name": n, "channel": ch, "product_category": CATEGORIES[cat], "discount": float(d),
          "valid_from": iso(ANCHOR - dt.timedelta(days=a)), "valid_to": iso(ANCHOR - dt.timedelta(days=b)),
          "reason": r, "state": s, "owner": "channel_manager"}
         for n, ch, cat, d, a, b, r, s in [
             ("双十一家电让利 / Singles' Day appliance discount", "retail", 6, 8, 20, 5, "电商大促期间零售终端同步让利", "ended"),
             ("冬季挖掘机促销 / Winter excavator promotion", "dealer", 0, 5, 30, -90, "冬季淡季保持经销商提货量", "active"),
             ("工程项目批量折扣 / Project volume discount", "project", 2, 6, 100, -200, "配合电网集采项目", "active"),
             ("商用车年末冲量 / Year-end truck push", "dealer", 5, 4, 10, -40, "完成年度销量目标", "pending_approval"),
             ("春节前备件促销 / Spare parts before Spring Festival", "all", 7, 10, -30, -70, "节前保养高峰", "draft"),
             ("三季度涂料调价 / Q3 coatings price adjustment", "all", 3, 3, 150, 60, "原材料价格回落", "ended")]],
        "Discount policies by period, channel and product line.")

    plan_names = [f"{ANCHOR.year}年度销售计划 / {ANCHOR.year} sales plan", f"{ANCHOR.year + 1}年度销售计划 / {ANCHOR.year + 1} sales plan"]
    add("14_sales_plans.yaml", "sales_plan",
        [{"name": plan_names[0], "year": ANCHOR.year, "company_target": 420000000.0, "state": "approved",
          "basis": "上年实际完成3.6亿元，行业增速约12% / Last year CNY 360m, market growing about 12%", "owner": "sales_manager"},
         {"name": plan_names[1], "year": ANCHOR.year + 1, "company_target": 480000000.0, "state": "draft",
          "basis": "以销定产，结合产能扩建进度 / Sales-driven, with the new plant's capacity", "owner": "sales_manager"}],
        "Annual sales plans.")
    target_specs = [("key_accounts", "key_account_manager", None, 90000000), ("projects", "sales_manager", None, 110000000),
                    ("channel", "channel_manager", None, 120000000), ("retail", "sales_rep", None, 30000000)]
    for branch in BRANCHES[1:7]:
        target_specs.append(("channel", None, branch[0], 10000000))
    targets = []
    for dept, rep, branch, amount in target_specs:
        label = rep or branch
        adjusted = g.rng.random() < 0.35
        original = float(amount)
        targets.append({"name": f"{ANCHOR.year} {dept} {label}", "plan": plan_names[0], "year": ANCHOR.year,
                        "department": dept, "branch": branch, "rep": rep,
                        "target": original * (1.1 if adjusted else 1.0), "original_target": original,
                        "adjustment_reason": "三季度市场回暖，上调目标 / Market picked up in Q3" if adjusted else None,
                        "q1_share": 20.0, "q2_share": 25.0, "q3_share": 25.0, "q4_share": 30.0,
                        "state": "active", "owner": rep or "sales_manager"})
    for dept, rep, amount in [("key_accounts", "key_account_manager", 100000000), ("channel", "channel_manager", 140000000)]:
        targets.append({"name": f"{ANCHOR.year + 1} {dept} {rep}", "plan": plan_names[1], "year": ANCHOR.year + 1,
                        "department": dept, "rep": rep, "target": float(amount), "state": "draft", "owner": rep})
    add("15_sales_targets.yaml", "sales_target", targets, "The plan broken down by department, branch and rep.")
    target_of = {t["rep"]: ids.of("sales_target", i) for i, t in enumerate(targets) if t["state"] == "active" and t["rep"]}

    # ---- opportunities
    buyers = enterprises + utilities + epcs + oems + individuals
    product_sets = {"utility": POWER, "epc_contractor": MACHINES + POWER, "oem": POWER + STEEL,
                    "individual": ["XE215", "LW500", "LT-4X2", "AC-15", "PV-50K"]}
    industry_products = {"钢铁": STEEL, "化工": CHEM, "涂料": CHEM, "矿业": MACHINES, "建设": MACHINES,
                         "物流": ["HT-6X4", "LT-4X2", "EV-L3"], "零部件": STEEL, "压力容器": STEEL + ["Q345R"]}
    def products_for(c):
        if c["customer_kind"] in product_sets:
            return product_sets[c["customer_kind"]]
        for key, codes in industry_products.items():
            if key in c["name"]:
                return codes
        return MACHINES
    stages = [("won", 32), ("lost", 18), ("prospecting", 10), ("qualification", 14), ("proposal", 14), ("negotiation", 12)]
    probability = {"prospecting": 10.0, "qualification": 20.0, "proposal": 50.0, "negotiation": 80.0, "won": 100.0, "lost": 0.0}
    words = {"utility": "配网改造项目", "epc_contractor": "总包工程设备采购", "oem": "年度配套采购",
             "individual": "个人购机", "enterprise": "设备采购"}
    opportunities, names = [], set()
    for i in range(190):
        c = g.pick(buyers)
        kind = c["customer_kind"]
        mode = "retail" if kind == "individual" else g.weighted(
            [("project", 50), ("direct", 30), ("channel", 20)]) if kind in ("utility", "epc_contractor") \
            else g.weighted([("direct", 45), ("channel", 40), ("project", 15)])
        stage = g.weighted(stages)
        if stage in ("won", "lost"):
            close = g.days_ago(3, 680)
            opened = close - dt.timedelta(days=g.rng.randint(30, 300 if mode == "project" else 150))
        else:
            opened = g.days_ago(5, 250)
            close = g.days_ahead(15, 300)
        codes = products_for(c)
        lines = [{"product": PNAME[code], "quantity": g.rng.randint(1, 20 if code in STEEL + CHEM else 4),
                  "unit_price": float(PRICE[code])} for code in g.rng.sample(codes, min(len(codes), g.rng.randint(1, 2)))]
        amount = sum(l["quantity"] * l["unit_price"] for l in lines)
        base = f"{c['name'].replace('有限公司', '').replace('（个人）', '')} {words.get(kind, '设备采购')}"
        name = base
        n = 2
        while name in names:
            name = f"{base} {n}期"
            n += 1
        names.add(name)
        dealer = g.pick(dealers if mode == "retail" else all_dealers) if mode in ("channel", "retail") else None
        opportunities.append({
            "name": name, "customer": c["name"],
            "contact": g.pick(contacts_of[c["name"]]) if c["name"] in contacts_of else None,
            "campaign": g.pick(live)["name"] if g.rng.random() < 0.2 else None,
            "amount": amount, "probability": probability[stage], "opened_on": iso(opened),
            "close_date": iso(close), "stage": stage,
            "loss_reason": g.weighted([("price", 30), ("competitor", 30), ("product_fit", 10), ("delivery", 12),
                                       ("relationship", 10), ("project_cancelled", 8)]) if stage == "lost" else None,
            "competitor": g.pick(["卡特彼勒", "小松", "三一重工", "中联重科", "柳工", "特变电工", "正泰电气"]) if stage == "lost" else None,
            "sales_mode": mode, "dealer": dealer["name"] if dealer else None,
            "design_institute": g.pick(institutes)["name"] if mode == "project" else None,
            "utility": c["name"] if kind == "utility" else (g.pick(utilities)["name"] if mode == "project" and g.rng.random() < 0.5 else None),
            "branch": c["branch"], "is_tender": mode == "project" and g.rng.random() < 0.6,
            "needs_tech_support": mode == "project" or g.rng.random() < 0.2,
            "lines": lines, "owner": "channel_manager" if mode in ("channel", "retail") else
            ("key_account_manager" if mode == "project" else c["owner"]),
        })
    add("16_opportunities.yaml", "opportunity", opportunities,
        "Opportunities: direct, project, channel and retail sales on long cycles.")
    opp_id = {o["name"]: ids.of("opportunity", i) for i, o in enumerate(opportunities)}

    presales = []
    for o in [o for o in opportunities if o["needs_tech_support"]][:45]:
        state = "done" if o["stage"] in ("won", "lost") else g.pick(["requested", "assigned", "in_progress", "done"])
        presales.append({"subject": f"{o['name']} 技术支持 / technical support", "opportunity": opp_id[o["name"]],
                         "customer": o["customer"], "kind": g.pick(["site_survey", "solution", "demonstration",
                                                                   "tender_technical", "drawing_review", "training"]),
                         "needed_by": iso(dt.date.fromisoformat(o["opened_on"]) + dt.timedelta(days=20)),
                         "engineer": None if state == "requested" else "presales_engineer",
                         "requirement": "请协助完成现场工况勘察并出具技术方案及设备选型 / Survey the site and propose the machines",
                         "result": "已提交技术方案与选型配置单 / Solution and configuration delivered" if state == "done" else None,
                         "hours": float(g.rng.randint(4, 40)) if state == "done" else None,
                         "state": state, "owner": o["owner"]})
    add("17_presales_requests.yaml", "presales_request", presales, "Technical pre-sales support requests.")

    tenders = []
    for o in [o for o in opportunities if o["is_tender"]]:
        state = {"won": "won", "lost": "lost"}.get(o["stage"]) or g.pick(["registered", "preparing", "submitted"])
        deadline = dt.date.fromisoformat(o["close_date"]) - dt.timedelta(days=20)
        tenders.append({"name": o["name"], "tender_no": f"ZB{deadline.strftime('%Y%m')}-{len(tenders) + 1:03d}",
                        "customer": o["customer"], "opportunity": opp_id[o["name"]],
                        "design_institute": o["design_institute"],
                        "agency": g.pick(["中招国际招标有限公司", "国信招标集团", "中化建国际招标有限责任公司"]),
                        "published_on": iso(deadline - dt.timedelta(days=25)), "deadline": stamp(deadline, 1, 30),
                        "opening_on": iso(deadline), "budget": round(o["amount"] * 1.1, 2),
                        "bid_amount": round(o["amount"] * 0.97, 2) if state != "registered" else None,
                        "bid_bond": round(o["amount"] * 0.02, -2), "bond_returned": state == "lost",
                        "competitors": "三一、中联、徐工 / three domestic competitors",
                        "winning_bid": round(o["amount"] * 0.97, 2) if state == "won" else None,
                        "result_note": "技术分第一，价格分第二 / best technical score" if state == "won" else
                        ("价格高于中标人约6% / about 6% above the winner" if state == "lost" else None),
                        "state": state, "owner": o["owner"]})
    add("18_tenders.yaml", "tender", tenders, "Tenders and our bids.")

    specials = []
    for o in g.rng.sample([o for o in opportunities if o["stage"] != "prospecting"], 32):
        code = next(k for k, v in PNAME.items() if v == o["lines"][0]["product"])
        discount = g.pick([0.05, 0.1, 0.15, 0.18, 0.22, 0.25, 0.3])
        state = g.pick(["draft", "pending_manager", "pending_finance", "approved", "approved", "rejected"])
        if state == "pending_finance" and discount <= 0.2:
            state = "approved"
        requested = round(PRICE[code] * (1 - discount), -1)
        specials.append({"customer": o["customer"], "opportunity": opp_id[o["name"]], "product": PNAME[code],
                         "quantity": o["lines"][0]["quantity"], "requested_price": requested,
                         "competitor_price": round(requested * 0.97, -1),
                         "reason": "竞品报价低，客户为战略客户，争取首单 / Competitor is cheaper; strategic first order",
                         "valid_until": iso(g.days_ahead(-30, 90)),
                         "approved_price": requested if state == "approved" else None, "state": state,
                         "owner": o["owner"]})
    add("19_special_price_requests.yaml", "special_price_request", specials, "Special price requests.")

    quotes = []
    qstates = {"proposal": ["draft", "pending_approval", "approved", "issued"], "negotiation": ["issued", "sent"],
               "won": ["accepted"], "lost": ["declined"]}
    for o in opportunities:
        if o["stage"] not in qstates or g.rng.random() > 0.5:
            continue
        state = g.pick(qstates[o["stage"]])
        special = next((ids.of("special_price_request", i) for i, s in enumerate(specials)
                        if s["opportunity"] == opp_id[o["name"]] and s["state"] == "approved"), None)
        lines = [{"product": l["product"], "quantity": l["quantity"], "unit_price": l["unit_price"],
                  "discount": 18.0 if state == "pending_approval" else float(g.pick([0, 2, 5, 8, 10]))} for l in o["lines"]]
        quotes.append({"customer": o["customer"], "contact": o["contact"], "opportunity": opp_id[o["name"]],
                       "quote_type": "special" if special else ("project" if o["sales_mode"] == "project" else "standard"),
                       "special_price": special,
                       "price_basis": g.pick(["ex_works", "delivered", "installed"]),
                       "delivery_terms": g.pick(["合同签订后30天 / 30 days after signing", "合同签订后45天 / 45 days",
                                                 "现货 / from stock"]),
                       "valid_until": iso(dt.date.fromisoformat(o["close_date"]) + dt.timedelta(days=30)),
                       "issued_on": iso(dt.date.fromisoformat(o["opened_on"]) + dt.timedelta(days=15))
                       if state in ("issued", "sent", "accepted", "declined") else None,
                       "lines": lines, "state": state, "owner": o["owner"]})
    add("20_quotes.yaml", "quote", quotes, "Quotes issued centrally on the standard form.")

    samples = []
    sample_buyers = [c for c in enterprises + oems if any(k in c["name"] for k in ("化工", "涂料", "钢铁", "零部件", "重工", "容器"))]
    for i in range(42):
        c = g.pick(sample_buyers)
        code = g.pick(products_for(c))
        opp = next((o for o in opportunities if o["customer"] == c["name"]), None)
        state = g.weighted([("closed", 25), ("feedback_received", 15), ("shipped", 20), ("approved", 10),
                            ("pending_approval", 10), ("draft", 8), ("rejected", 5), ("cancelled", 3)])
        shipped = g.days_ago(5, 300) if state in ("shipped", "feedback_received", "closed") else None
        free = g.rng.random() < 0.8
        samples.append({"customer": c["name"], "contact": contacts_of[c["name"]][0], "opportunity": opp_id[opp["name"]] if opp else None,
                        "product": PNAME[code], "specification": g.pick(["标准品", "定制配方", "加厚规格"]),
                        "quantity": float(g.pick([1, 5, 20, 50, 200])), "unit": "kg" if code in CHEM + STEEL else "件",
                        "purpose": g.pick(["evaluation", "certification", "trial_production"]),
                        "application": g.pick(["用于新产线试生产", "第三方检测认证", "替代进口材料验证"]),
                        "free_of_charge": free, "sample_value": g.money(500, 30000, 100),
                        "required_by": iso((shipped or ANCHOR) + dt.timedelta(days=5)),
                        "expected_volume": g.money(200000, 5000000, 10000), "ship_to": c["address"],
                        "shipped_on": iso(shipped) if shipped else None,
                        "carrier": g.pick(["顺丰速运", "德邦物流", "京东物流"]) if shipped else None,
                        "tracking_no": f"SF{g.rng.randint(10**11, 10**12 - 1)}" if shipped else None,
                        "received_on": iso(min(shipped + dt.timedelta(days=2), ANCHOR)) if shipped else None,
                        "test_result": g.pick(["passed", "passed", "passed_with_changes", "failed"]) if state in ("feedback_received", "closed") else None,
                        "feedback": "样品性能满足要求，准备小批量采购 / Meets the spec; small order next" if state in ("feedback_received", "closed") else None,
                        "feedback_on": iso(min(shipped + dt.timedelta(days=20), ANCHOR)) if state in ("feedback_received", "closed") else None,
                        "state": state, "owner": c["owner"]})
    add("21_sample_requests.yaml", "sample_request", samples, "Sample requests from approval to feedback.")

    # ---- orders and payments
    orders, payments = [], []
    def order(c, day, owner, lines, channel, dealer=None, opportunity=None, campaign=None):
        total = sum(l["quantity"] * l["unit_price"] for l in lines)
        age = (ANCHOR - day).days
        state = g.weighted([("completed", 80), ("delivered", 15), ("cancelled", 5)]) if age > 150 else \
            g.weighted([("delivered", 40), ("shipped", 35), ("completed", 25)]) if age > 50 else \
            g.weighted([("draft", 20), ("confirmed", 50), ("shipped", 30)])
        rep = owner if owner in target_of else None
        orders.append({"customer": c["name"], "opportunity": opportunity, "campaign": campaign,
                       "kind": "contract" if total > 500000 else "order",
                       "contract_no": f"MF-HT{day.strftime('%Y%m')}{len(orders) + 1:04d}",
                       "order_date": iso(day), "signed_on": iso(day),
                       "delivery_date": iso(day + dt.timedelta(days=g.rng.randint(15, 60))),
                       "shipping_address": c.get("address") or f"{c['region']}市",
                       "sales_channel": channel, "dealer": dealer, "branch": c["branch"],
                       "sales_target": target_of.get(rep) if day.year == ANCHOR.year else None,
                       "batch_nos": f"B{day.strftime('%y%m')}-{g.rng.randint(1, 30):02d}" if state != "draft" else None,
                       "erp_order_no": f"SO{day.strftime('%y%m%d')}{len(orders) + 1:04d}" if state != "draft" else None,
                       "production_status": {"draft": None, "confirmed": g.pick(["not_planned", "planned", "in_production"]),
                                             "shipped": "shipped", "cancelled": None}.get(state, "shipped"),
                       "erp_synced_at": stamp(ANCHOR, 2) if state != "draft" else None,
                       "lines": [dict(l, discount=0.0) for l in lines], "state": state, "owner": owner})
        oid = ids.of("order", len(orders) - 1)
        parts = {"completed": [0.3, 0.6, 0.1], "delivered": [0.3, 0.6], "shipped": [0.3], "confirmed": [0.3]}.get(state, [])
        when = day
        for share in parts:
            when = min(when + dt.timedelta(days=g.rng.randint(3, 50)), ANCHOR)
            payments.append({"customer": c["name"], "order": oid, "campaign": campaign, "amount": round(total * share, 2),
                             "paid_on": iso(when), "method": g.weighted([("bank_transfer", 55), ("acceptance_bill", 45)]),
                             "reference_no": f"HD{when.strftime('%Y%m%d')}{g.rng.randint(1000, 9999)}", "owner": "finance"})
        return oid
    by_name = {c["name"]: c for c in customers}
    won_orders = {}
    for o in opportunities:
        if o["stage"] == "won":
            channel = {"direct": "direct", "project": "project", "channel": "dealer", "retail": "retail"}[o["sales_mode"]]
            won_orders[o["name"]] = order(by_name[o["customer"]], dt.date.fromisoformat(o["close_date"]), o["owner"],
                                          o["lines"], channel, o["dealer"], opp_id[o["name"]], o["campaign"])
    # repeat business: steel and chemical buyers order on a cycle, dealers restock, retail sells
    for c in enterprises + oems:
        codes = products_for(c)
        if codes not in (STEEL, CHEM) and c["customer_kind"] != "oem":
            continue
        cycle = g.rng.randint(25, 75)
        count = g.rng.randint(3, 9)
        day = ANCHOR - dt.timedelta(days=cycle * count + g.rng.randint(-20, 60))
        for _ in range(count):
            day += dt.timedelta(days=cycle + g.rng.randint(-7, 7))
            if day > ANCHOR:
                break
            code = g.pick(codes)
            order(c, day, c["owner"], [{"product": PNAME[code], "quantity": g.rng.randint(20, 300),
                                        "unit_price": float(PRICE[code])}], "direct")
    for d in dealers[:20]:
        day = g.days_ago(500, 620)
        for _ in range(g.rng.randint(2, 5)):
            day += dt.timedelta(days=g.rng.randint(60, 140))
            if day > ANCHOR:
                break
            code = g.pick(["XE215", "LW500", "XS203", "SP-TEETH", "SP-HFILTER"])
            order(d, day, "channel_manager", [{"product": PNAME[code], "quantity": g.rng.randint(1, 6),
                                               "unit_price": float(PRICE[code]) * 0.92}], "dealer", d["name"])
    for d in dealers[26:30]:
        for _ in range(3):
            code = g.pick(["AC-15", "PV-50K"])
            order(d, g.days_ago(10, 300), "sales_rep", [{"product": PNAME[code], "quantity": g.rng.randint(20, 120),
                                                          "unit_price": float(PRICE[code]) * 0.85}], "retail", d["name"])
    for c in utilities[:4]:
        order(c, g.days_ago(30, 400), "key_account_manager",
              [{"product": PNAME["EM-3P"], "quantity": 2000, "unit_price": 380.0}], "own_outlet")
    add("22_orders.yaml", "order", orders, "Orders by channel, with ERP numbers, production status and batches.")
    add("23_payments.yaml", "payment", payments, "Payments against the pack's orders.")

    months = [dt.date(ANCHOR.year + (ANCHOR.month - 1 + k) // 12, (ANCHOR.month - 1 + k) % 12 + 1, 1) for k in range(-1, 5)]
    forecasts = []
    for code in ["XE215", "XE370", "LW500", "QY25", "S13-1000", "SCB13-2000", "Q235B", "E51"]:
        capacity = next(p[7] for p in PRODUCTS if p[0] == code)
        for m in months:
            last = int(capacity * g.rng.uniform(0.5, 0.95))
            forecast = int(last * g.rng.uniform(0.9, 1.35))
            forecasts.append({"name": f"{PNAME[code]} {m.strftime('%Y-%m')}", "product": PNAME[code], "month": iso(m),
                              "last_year_qty": last, "orders_in_hand": int(forecast * g.rng.uniform(0.3, 0.9)) if m <= months[2] else int(forecast * 0.2),
                              "forecast_qty": forecast, "capacity_qty": capacity,
                              "notes": "依据近两年同期销量、在手订单及经销商提货计划 / From two years' sales, orders in hand and dealer plans",
                              "state": "released" if m < months[1] else ("confirmed" if m <= months[2] else "draft"),
                              "owner": "production_planner"})
    add("24_production_forecasts.yaml", "production_forecast", forecasts, "Sales-driven production forecasts per product and month.")

    # ---- installed equipment
    equipment, serials = [], []
    machine_orders = [(i, o) for i, o in enumerate(orders) if o["state"] in ("completed", "delivered")
                      and any(next(k for k, v in PNAME.items() if v == l["product"]) in MACHINES + POWER[:3] for l in o["lines"])]
    for i, o in machine_orders[:170]:
        line = next(l for l in o["lines"] if next(k for k, v in PNAME.items() if v == l["product"]) in MACHINES + POWER[:3])
        code = next(k for k, v in PNAME.items() if v == line["product"])
        installed = dt.date.fromisoformat(o["delivery_date"])
        installed = min(installed, ANCHOR)
        serial = f"{code.replace('.', '')}-{installed.year}-{len(equipment) + 1:04d}"
        serials.append(serial)
        equipment.append({"serial_no": serial, "product": line["product"], "customer": o["customer"],
                          "dealer": o["dealer"], "order": ids.of("order", i),
                          "manufactured_on": iso(installed - dt.timedelta(days=20)), "installed_on": iso(installed),
                          "warranty_until": iso(installed + dt.timedelta(days=730)),
                          "site_address": f"{by_name[o['customer']]['region']}{g.pick(['项目工地', '厂区', '变电站', '矿区'])}",
                          "running_hours": g.rng.randint(100, 9000),
                          "status": g.weighted([("running", 85), ("under_repair", 8), ("stopped", 5), ("scrapped", 2)]),
                          "owner": "service_agent"})
    add("25_equipment.yaml", "equipment", equipment, "Installed equipment by serial number.")

    technicians = []
    for i in range(24):
        branch = BRANCHES[i % 9]
        name, _ = g.person(three_chars=True)
        dealer = service_dealers[i % len(service_dealers)]["name"] if i >= 20 else None
        technicians.append({"name": name, "user": "technician" if i == 0 else None, "branch": branch[0],
                            "dealer": dealer, "skill_level": 3 if i % 5 == 0 else (2 if i % 3 == 0 else 1),
                            "skills": g.rng.sample(["mechanical", "hydraulic", "electrical", "controls", "welding"], 2),
                            "daily_capacity": g.pick([2, 3, 4]), "phone": g.mobile(), "active": i != 23})
    add("26_technicians.yaml", "technician", technicians, "Service engineers with their skill levels.")
    active_techs = [t for t in technicians if t["active"]]

    contracts = []
    for k, e in enumerate(g.rng.sample(equipment, 45)):
        start = dt.date.fromisoformat(e["installed_on"]) + dt.timedelta(days=g.rng.randint(0, 60))
        end = start + dt.timedelta(days=365 * g.pick([1, 2]))
        state = "active" if end > ANCHOR and start <= ANCHOR else ("expired" if end <= ANCHOR else "draft")
        included = g.pick([2, 4, 6])
        visits, day = [], start
        for v in range(included):
            day = start + dt.timedelta(days=(v + 1) * (365 // included))
            done = day < ANCHOR
            visits.append({"planned_on": iso(day), "done": done, "done_on": iso(day) if done else None,
                           "notes": "更换三滤、检查液压系统 / filters changed, hydraulics checked" if done else None})
        upcoming = [v["planned_on"] for v in visits if not v["done"]]
        provider = "dealer" if e["dealer"] and k % 2 == 0 else "manufacturer"
        contracts.append({"customer": e["customer"], "equipment": e["serial_no"], "provider": provider,
                          "dealer": e["dealer"] if provider == "dealer" else None,
                          "level": g.pick(["basic", "standard", "premium"]), "start_date": iso(start), "end_date": iso(end),
                          "fee": g.money(12000, 80000, 1000), "included_visits": included, "visits": visits,
                          "next_visit_on": upcoming[0] if upcoming and state == "active" else None,
                          "state": state, "owner": "service_manager"})
    add("27_service_contracts.yaml", "service_contract", contracts, "Maintenance contracts with included visits.")
    contract_of = {c["equipment"]: ids.of("service_contract", i) for i, c in enumerate(contracts)}

    tickets, complaint_ids = [], []
    for i in range(60):
        e = g.pick(equipment)
        kind = "complaint" if i % 2 == 0 else "repair"
        logged = g.days_ago(1, 300)
        state = g.pick(["closed", "closed", "resolved", "in_progress", "assigned"]) if (ANCHOR - logged).days > 10 else g.pick(["new", "assigned"])
        due = dt.datetime.combine(logged, dt.time(2)) + dt.timedelta(hours=48)
        resolved = due - dt.timedelta(hours=g.rng.randint(-20, 40)) if state in ("resolved", "closed") else None
        tickets.append({"subject": (g.pick(["整机交付延迟 / Late delivery", "设备油漆脱落 / Paint peeling", "液压油渗漏 / Hydraulic leak",
                                            "服务工程师未按时到场 / Engineer late", "配件发错型号 / Wrong part shipped"])
                                    if kind == "complaint" else g.pick(["发动机无法启动 / Engine will not start",
                                                                         "动臂下沉 / Boom drifting", "变压器温升异常 / Transformer running hot"])),
                        "customer": e["customer"], "product": e["product"], "equipment": e["serial_no"],
                        "kind": kind, "priority": g.pick(["normal", "high", "urgent"]), "channel": g.pick(["phone", "onsite", "email"]),
                        "sla_due_at": due.strftime("%Y-%m-%dT%H:%M:00Z"),
                        "assignee": None if state == "new" else "service_agent",
                        "description": "客户反映问题，需尽快处理 / Customer reports a problem",
                        "complaint_category": g.pick(["quality", "delivery", "installation", "service", "price"]) if kind == "complaint" else None,
                        "responsible_dept": g.pick(["production", "quality", "logistics", "service"]) if kind == "complaint" else None,
                        "root_cause": "装配工序扭矩不足 / Assembly torque too low" if kind == "complaint" and resolved else None,
                        "corrective_action": "增加扭矩复检工序 / Added a torque check" if kind == "complaint" and resolved else None,
                        "compensation": float(g.pick([0, 0, 2000, 5000])) if kind == "complaint" and resolved else None,
                        "resolution": "已处理 / Handled" if resolved else None,
                        "resolved_at": resolved.strftime("%Y-%m-%dT%H:%M:00Z") if resolved else None,
                        "satisfaction": g.weighted([(5, 30), (4, 40), (3, 20), (2, 10)]) if state == "closed" else None,
                        "state": state, "owner": "service_agent"})
        if kind == "complaint":
            complaint_ids.append(ids.of("ticket", len(tickets) - 1))
    add("28_tickets.yaml", "ticket", tickets, "Complaints and repair tickets about installed equipment.")

    calls = []
    for i in range(130):
        e = g.pick(equipment) if g.rng.random() < 0.8 else None
        c = by_name[e["customer"]] if e else g.pick(buyers)
        category = g.weighted([("repair", 40), ("maintenance", 20), ("installation", 10), ("parts", 12),
                               ("inquiry", 12), ("complaint", 6)])
        received = g.days_ago(0, 200)
        if category in ("parts", "inquiry"):
            state = "answered"
        elif category == "complaint":
            state = g.pick(["complaint", "logged"])
        else:
            state = g.pick(["dispatched", "closed", "closed"]) if (ANCHOR - received).days > 3 else g.pick(["logged", "dispatched"])
        name, _ = g.person(three_chars=True)
        calls.append({"received_at": stamp(received, g.rng.randint(0, 10), g.rng.randint(0, 59)), "caller_name": name,
                      "phone": g.mobile(), "customer": c["name"], "equipment": e["serial_no"] if e else None,
                      "category": category, "priority": g.weighted([("normal", 60), ("high", 25), ("urgent", 15)]),
                      "description": {"repair": "设备报故障，需上门维修 / Machine fault, needs a visit",
                                      "maintenance": "预约定期保养 / Book a maintenance visit",
                                      "installation": "新机到货，申请安装调试 / New machine arrived, please install",
                                      "parts": "询问斗齿价格及库存 / Price and stock of bucket teeth",
                                      "inquiry": "咨询保养周期 / Maintenance interval question",
                                      "complaint": "对上次维修不满意 / Unhappy with the last repair"}[category],
                      "branch": c["branch"] if state in ("dispatched", "closed") else None,
                      "answer": "已告知价格与库存，客户将联系经销商下单 / Price and stock given" if state == "answered" else None,
                      "cti_call_id": f"CTI-{received.strftime('%Y%m%d')}-{i + 1:05d}",
                      "state": state, "owner": "call_center_agent"})
    add("29_service_calls.yaml", "service_call", calls, "Calls to the service hotline.")

    work_orders = []
    def work_order(title, kind, e, customer, state, made, **extra):
        level = extra.pop("required_level", g.weighted([(1, 50), (2, 35), (3, 15)]))
        tech = g.pick([t for t in active_techs if t["skill_level"] >= level]) if state != "new" else None
        scheduled = made + dt.timedelta(days=g.rng.randint(0, 3))
        due = dt.datetime.combine(made, dt.time(8)) + dt.timedelta(hours=g.pick([24, 48, 120]))
        started = dt.datetime.combine(scheduled, dt.time(g.rng.randint(1, 6))) if state in ("in_progress", "completed", "closed", "escalated") else None
        completed = None
        if state in ("completed", "closed"):
            late = g.rng.random() < 0.2
            completed = due + dt.timedelta(hours=g.rng.randint(2, 48)) if late else started + dt.timedelta(hours=g.rng.randint(2, 20))
            completed = min(completed, dt.datetime.combine(ANCHOR, dt.time(12)))
        hours = float(g.rng.randint(2, 16)) if completed else None
        record = {"title": title, "kind": kind, "customer": customer, "equipment": e["serial_no"] if e else None,
                  "branch": by_name[customer]["branch"], "priority": g.pick(["normal", "normal", "high", "urgent"]),
                  "required_level": level, "technician": tech["name"] if tech else None,
                  "dealer": tech["dealer"] if tech and tech["dealer"] else None,
                  "scheduled_at": stamp(scheduled, 1) if tech else None,
                  "due_at": due.strftime("%Y-%m-%dT%H:%M:00Z"),
                  "started_at": started.strftime("%Y-%m-%dT%H:%M:00Z") if started else None,
                  "completed_at": completed.strftime("%Y-%m-%dT%H:%M:00Z") if completed else None,
                  "fault_description": {"installation": "新机安装调试 / Install and commission",
                                        "maintenance": "按合同定期保养 / Scheduled maintenance",
                                        "repair": "设备故障维修 / Repair a fault",
                                        "inspection": "季度巡检 / Quarterly inspection"}[kind],
                  "work_done": "已完成，设备运行正常 / Done, machine running" if completed else None,
                  "chargeable": kind == "repair" and g.rng.random() < 0.4,
                  "labour_hours": hours, "labour_cost": hours * 200 * level if hours else None,
                  "parts_cost": g.money(0, 20000, 100) if completed and kind == "repair" else (800.0 if completed and kind == "maintenance" else None),
                  "travel_cost": g.money(100, 1500, 50) if completed else None,
                  "satisfaction": g.weighted([(5, 45), (4, 35), (3, 12), (2, 6), (1, 2)]) if state == "closed" else None,
                  "state": state, "owner": "service_agent"}
        record.update(extra)
        work_orders.append(record)
        return ids.of("work_order", len(work_orders) - 1)
    def state_for(made):
        age = (ANCHOR - made).days
        if age > 20:
            return g.weighted([("closed", 70), ("completed", 20), ("cancelled", 3), ("escalated", 7)])
        return g.weighted([("new", 15), ("dispatched", 35), ("in_progress", 25), ("completed", 15), ("escalated", 10)])
    for i, call in enumerate(calls):
        if call["state"] in ("dispatched", "closed"):
            e = next((x for x in equipment if x["serial_no"] == call["equipment"]), None)
            made = dt.date.fromisoformat(call["received_at"][:10])
            work_order(f"{call['caller_name']}: {call['category']}", call["category"], e, call["customer"], state_for(made),
                       made, service_call=ids.of("service_call", i))
    for e in equipment:
        if g.rng.random() < 0.35:
            work_order(f"{e['serial_no']} 安装调试 / installation", "installation", e, e["customer"], "closed",
                       dt.date.fromisoformat(e["installed_on"]), required_level=1)
    for c in contracts:
        for v in c["visits"]:
            if v["done"]:
                work_order(f"{c['equipment']} 定期保养 / maintenance", "maintenance",
                           next(x for x in equipment if x["serial_no"] == c["equipment"]), c["customer"], "closed",
                           dt.date.fromisoformat(v["planned_on"]), service_contract=contract_of[c["equipment"]])
    add("30_work_orders.yaml", "work_order", work_orders, "Installation, maintenance and repair work orders.")

    reports = []
    for i, w in enumerate(work_orders):
        if not w["completed_at"]:
            continue
        completed = dt.date.fromisoformat(w["completed_at"][:10])
        lag = g.weighted([(0, 30), (1, 25), (3, 15), (7, 10), (21, 12), (28, 8)])
        submitted = min(completed + dt.timedelta(days=lag), ANCHOR)
        state = "reviewed" if w["state"] == "closed" and g.rng.random() < 0.7 else ("submitted" if w["state"] == "closed" else "draft")
        reports.append({"work_order": ids.of("work_order", i), "customer": w["customer"], "technician": w["technician"],
                        "summary": w["work_done"], "recommendations": g.pick(["建议500小时后更换液压油", "建议加强日常点检", None]),
                        "satisfaction": w["satisfaction"] or g.weighted([(5, 40), (4, 40), (3, 15), (2, 5)]),
                        "customer_signed": state != "draft",
                        "submitted_on": iso(submitted) if state != "draft" else None,
                        "state": state, "owner": "technician" if w["technician"] == technicians[0]["name"] else "service_agent"})
    add("31_service_reports.yaml", "service_report", reports, "Service reports filed for completed work orders.")

    faults, part_requests = [], []
    repair_ids = [(i, w) for i, w in enumerate(work_orders) if w["kind"] == "repair" and w["equipment"]]
    for i, w in repair_ids[:95]:
        day = dt.date.fromisoformat(w["due_at"][:10]) - dt.timedelta(days=2)
        category = g.pick(["mechanical", "hydraulic", "electrical", "controls", "wear", "operation"])
        faults.append({"equipment": w["equipment"], "customer": w["customer"], "work_order": ids.of("work_order", i),
                       "occurred_on": iso(min(day, ANCHOR)), "category": category,
                       "fault_code": f"E{g.rng.randint(100, 999)}",
                       "symptom": {"mechanical": "回转异响", "hydraulic": "液压油温过高", "electrical": "仪表无显示",
                                   "controls": "控制器报通讯故障", "wear": "斗齿磨损严重", "operation": "操作不当导致熄火"}[category],
                       "cause": "部件老化 / Worn part", "action": "更换部件 / Part replaced",
                       "downtime_hours": float(g.rng.randint(1, 72)),
                       "severity": g.weighted([("minor", 50), ("major", 35), ("critical", 15)]), "owner": "service_agent"})
    for i, w in repair_ids[:60]:
        code = g.pick(SPARES)
        state = g.pick(["closed", "closed", "shipped", "approved", "submitted", "draft", "rejected"])
        warranty = g.rng.random() < 0.5
        part_requests.append({"work_order": ids.of("work_order", i), "equipment": w["equipment"], "customer": w["customer"],
                              "part": PNAME[code], "quantity": g.rng.randint(1, 4),
                              "reason": g.pick(["failure", "wear", "upgrade"]), "under_warranty": warranty,
                              "unit_cost": float(PRICE[code]), "old_part_returned": state == "closed" and warranty,
                              "state": state, "owner": "service_agent"})
    add("32_fault_reports.yaml", "fault_report", faults, "Fault reports of installed equipment.")
    add("33_part_requests.yaml", "part_request", part_requests, "Part replacement requests.")
    transfers = []
    for i in range(16):
        to = BRANCHES[1 + i % 8][0]
        state = g.pick(["received", "received", "shipped", "approved", "draft"])
        transfers.append({"from_branch": "苏州备件中心库", "to_branch": to,
                          "part_request": ids.of("part_request", i * 3) if i * 3 < len(part_requests) else None,
                          "needed_by": iso(g.days_ago(-10, 120)), "reason": "补充办事处安全库存 / Refill the branch's stock",
                          "lines": [{"part": PNAME[c], "quantity": g.rng.randint(2, 30)} for c in g.rng.sample(SPARES, 2)],
                          "state": state, "owner": "service_manager"})
    add("34_parts_transfers.yaml", "parts_transfer", transfers, "Parts transfers from the central warehouse.")
    notes = []
    for i, o in enumerate(orders):
        if o["state"] in ("shipped", "delivered", "completed") and g.rng.random() < 0.3:
            shipped = dt.date.fromisoformat(o["order_date"]) + dt.timedelta(days=10)
            notes.append({"kind": "order", "customer": o["customer"], "order": ids.of("order", i), "ship_to": o["shipping_address"],
                          "carrier": g.pick(["中铁快运", "德邦物流", "安能物流"]), "tracking_no": f"WL{g.rng.randint(10**9, 10**10 - 1)}",
                          "packages": g.rng.randint(1, 12), "shipped_on": iso(min(shipped, ANCHOR)),
                          "delivered_on": iso(min(shipped + dt.timedelta(days=3), ANCHOR)) if o["state"] != "shipped" else None,
                          "state": "shipped" if o["state"] == "shipped" else "delivered", "owner": "service_agent"})
    for i, p in enumerate(part_requests):
        if p["state"] in ("shipped", "closed"):
            notes.append({"kind": "spare_parts", "customer": p["customer"], "part_request": ids.of("part_request", i),
                          "carrier": "顺丰速运", "tracking_no": f"SF{g.rng.randint(10**11, 10**12 - 1)}", "packages": 1,
                          "shipped_on": iso(g.days_ago(1, 120)), "state": "delivered" if p["state"] == "closed" else "shipped",
                          "owner": "service_agent"})
    for i, s in enumerate(samples):
        if s["shipped_on"]:
            notes.append({"kind": "sample", "customer": s["customer"], "sample_request": ids.of("sample_request", i),
                          "ship_to": s["ship_to"], "carrier": s["carrier"], "tracking_no": s["tracking_no"], "packages": 1,
                          "shipped_on": s["shipped_on"], "delivered_on": s["received_on"], "state": "delivered",
                          "owner": s["owner"]})
    add("35_shipping_notes.yaml", "shipping_note", notes, "Shipping notes for orders, spare parts and samples.")

    recalls = []
    recall_orders = [(i, o) for i, o in enumerate(orders) if o["batch_nos"] and
                     any(l["product"] == PNAME["S13-1000"] or l["product"] == PNAME["E51"] for l in o["lines"])]
    for k, (title, code, severity, remedy, state) in enumerate([
            ("S13 变压器分接开关隐患召回 / S13 tap changer recall", "S13-1000", "class2", "repair", "in_progress"),
            ("E-51 树脂批次粘度超标召回 / E-51 viscosity recall", "E51", "class3", "replace", "closed"),
            ("XE215 液压管路卡箍排查 / XE215 hose clamp check", "XE215", "class2", "repair", "draft")]):
        affected = [(i, o) for i, o in recall_orders if any(l["product"] == PNAME[code] for l in o["lines"])][:8]
        if not affected:
            affected = [(i, o) for i, o in enumerate(orders) if o["batch_nos"] and any(l["product"] == PNAME[code] for l in o["lines"])][:6]
        items = [{"customer": o["customer"], "order": ids.of("order", i), "batch_no": o["batch_nos"],
                  "quantity": float(next(l["quantity"] for l in o["lines"] if l["product"] == PNAME[code])),
                  "status": "replaced" if state == "closed" else g.pick(["to_notify", "notified", "repaired"])}
                 for i, o in affected]
        recalls.append({"title": title, "product": PNAME[code], "batches": ", ".join(sorted({x["batch_no"] for x in items})) or "B2601-01",
                        "severity": severity, "remedy": remedy,
                        "reason": "质量部抽检发现批次性隐患，主动召回 / Quality found a batch defect; voluntary recall",
                        "source_ticket": complaint_ids[k], "announced_on": iso(g.days_ago(10, 90)) if state != "draft" else None,
                        "items": items, "state": state, "owner": "quality_manager"})
    add("36_product_recalls.yaml", "product_recall", recalls, "Product recalls with the affected customers, orders and batches.")

    market = []
    for i in range(48):
        c = g.pick(buyers + institutes) if g.rng.random() < 0.6 else None
        kind = g.pick(["project", "tender", "expansion", "competitor"])
        state = g.weighted([("new", 15), ("assigned", 30), ("converted", 40), ("discarded", 15)])
        if state == "converted" and not c:
            state = "assigned"
        opp = next((o for o in opportunities if c and o["customer"] == c["name"]), None) if state == "converted" else None
        if state == "converted" and not opp:
            state = "assigned"
        name, city, _ = new_name("{city}{root}新建项目")
        market.append({"title": f"{(c or {}).get('name', name).replace('有限公司', '')} " + {"project": "新建项目设备需求", "tender": "招标公告",
                                                                                                   "expansion": "扩产技改", "competitor": "竞品动态"}[kind],
                       "kind": kind, "source": g.pick(["marketing", "dealer", "tender_platform", "design_institute", "exhibition", "media"]),
                       "company": (c or {}).get("name", name), "customer": c["name"] if c else None,
                       "contact_name": g.person(three_chars=True)[0], "phone": g.mobile(), "region": city[0],
                       "estimated_amount": g.money(500000, 30000000, 10000),
                       "expected_purchase": iso(g.days_ahead(-60, 240)),
                       "project_lead": None if state == "new" else g.pick(["key_account_manager", "sales_manager"]),
                       "details": "项目已立项，计划明年一季度招标 / Project approved, tender planned next Q1",
                       "opportunity": opp_id[opp["name"]] if opp else None,
                       "state": state, "owner": "marketing"})
    add("37_market_info.yaml", "market_info", market, "Market information passed to the sales project leads.")

    leads = []
    for i in range(40):
        name, city, domain = new_name("{city}{root}机械租赁有限公司" if i % 2 else "{city}{root}建筑劳务有限公司")
        person, pinyin = g.person(three_chars=True)
        leads.append({"company": name, "contact_name": person, "contact_title": g.pick(["老板", "设备经理", "采购"]),
                      "phone": g.mobile(), "email": f"{pinyin}@{domain}.com",
                      "source": g.pick(["dealer", "market_info", "tender_platform", "call_center", "exhibition"]),
                      "industry": "construction", "region": city[0],
                      "description": "计划采购挖掘机2-3台 / Plans to buy 2-3 excavators",
                      "status": g.weighted([("contacted", 35), ("qualified", 30), ("disqualified", 15), ("converted", 20)]),
                      "owner": "channel_manager"})
        if leads[-1]["status"] == "disqualified":
            leads[-1]["disqualify_reason"] = g.pick(["no_budget", "competitor", "no_need"])
    add("38_leads.yaml", "lead", leads, "Leads reported by dealers, the call centre and tender platforms.")

    activities, message_no = [], 0
    subjects = {"visit": "拜访客户 / Customer visit", "call": "电话跟进 / Follow-up call", "email": "邮件往来 / Email",
                "meeting": "技术交流会 / Technical meeting", "task": "准备投标文件 / Prepare the bid"}
    for i in range(320):
        kind = g.weighted([("visit", 30), ("call", 30), ("email", 20), ("meeting", 10), ("task", 10)])
        o = g.pick(opportunities) if g.rng.random() < 0.6 else None
        c = by_name[o["customer"]] if o else g.pick(buyers + all_dealers + institutes)
        future = g.rng.random() < 0.15
        day = g.days_ahead(0, 30) if future else g.days_ago(1, 500)
        email = kind == "email"
        if email:
            message_no += 1
        activities.append({"subject": f"{subjects[kind]} - {c['name'].replace('有限公司', '')}", "kind": kind,
                           "channel": {"visit": "onsite", "call": "phone", "email": "email", "meeting": "onsite",
                                       "task": None}[kind] if not (c["customer_kind"] in ("dealer", "agent") and kind == "call") else "dealer",
                           "due_at": stamp(day, g.rng.randint(1, 9)), "done": not future and g.rng.random() < 0.92,
                           "customer": c["name"], "contact": g.pick(contacts_of[c["name"]]) if c["name"] in contacts_of else None,
                           "opportunity": opp_id[o["name"]] if o else None,
                           "email_from": "sales@example-machinery.com.cn" if email else None,
                           "email_to": c.get("email") if email else None,
                           "email_message_id": f"<{20260000 + message_no}.sales@example-machinery.com.cn>" if email else None,
                           "description": g.pick(["沟通设备选型与交期", "介绍融资租赁方案", "了解项目进度及招标安排",
                                                  "回访设备使用情况", "商务条款谈判"]),
                           "owner": o["owner"] if o else c["owner"]})
    add("39_activities.yaml", "activity", activities, "Visits, calls, emails and meetings across every touchpoint.")

    kb = [("XE215 日常保养规程 / XE215 maintenance schedule", "maintenance", "挖掘机 XE215", "XE215"),
          ("XE370 故障代码表 / XE370 fault codes", "fault_code", "挖掘机 XE370", "XE370"),
          ("LW500 操作说明书 / LW500 operating manual", "manual", "装载机 LW500", "LW500"),
          ("QY25 技术参数 / QY25 data sheet", "spec_sheet", "汽车起重机 QY25", "QY25"),
          ("S13 变压器安装指导 / Installing an S13 transformer", "installation", "油浸式变压器 S13-1000kVA", "S13-1000"),
          ("干式变压器温控器设置 / Dry transformer temperature controller", "troubleshooting", "干式变压器 SCB13-2000kVA", "SCB13-2000"),
          ("环氧树脂 E-51 技术数据表 / E-51 technical data", "spec_sheet", "环氧树脂 E-51", "E-51"),
          ("Q235B 热轧卷板质量证明书说明 / Q235B mill certificate", "product", "热轧卷板 Q235B", "Q235B"),
          ("液压系统排气方法 / Bleeding the hydraulics", "troubleshooting", "液压主泵", "XE215, XE370"),
          ("冬季工程机械防冻指南 / Machines in winter", "maintenance", None, "全系列"),
          ("经销商授权服务管理办法 / Authorised dealer service rules", "policy", None, "全系列"),
          ("光伏逆变器故障代码 / Inverter fault codes", "fault_code", "光伏逆变器 50kW", "PV-50K"),
          ("变频空调常见问题 / Inverter air conditioner FAQ", "faq", "变频空调 1.5匹", "AC-15"),
          ("电动物流车充电规范 / Charging the EV-L3", "manual", "电动物流车 EV-L3", "EV-L3")]
    add("40_kb_articles.yaml", "kb_article",
        [{"title": t, "category": cat, "product": p, "product_category": None, "models": m,
          "keywords": t.split(" / ")[0][:30], "audience": ["internal", "dealer"] if cat != "policy" else ["internal", "dealer", "customer"],
          "body": f"{t}\n\n适用机型：{m}。请按本文步骤操作，注意安全。\nApplies to {m}. Follow the steps; mind safety.",
          "document_url": f"https://docs.example-machinery.com.cn/{i + 1}.pdf", "published": True, "owner": "service_manager"}
         for i, (t, cat, p, m) in enumerate(kb)], "The product knowledge base.")

    for name, entity, records, header in files:
        write_seed(OUT, name, entity, records, header)
        print(f"{name}: {len(records)} {entity} records")


if __name__ == "__main__":
    main()
