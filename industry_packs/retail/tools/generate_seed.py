"""Write industry_packs/retail/seed/: the retail and distribution pack's sample records.

A Chinese tea brand (teas, teaware, tea snacks, gift boxes) selling to consumers through its own
stores, franchise stores, its online mall, two marketplaces and a WeChat mini-program, and
through regional dealers: regions, channels, terminals and their fees, price lists per channel,
region and member tier, promotions, members, a year of member orders with few lines each (so
the basket, RFM, repurchase and tier reports show real patterns), points gifts and
redemptions, care records and complaints, dealers with their users, stock reports,
evaluations, training sessions and joint tasks. It adds to the standard model's sample data
(metadata/seed/). Run `python3 industry_packs/retail/tools/generate_seed.py`; the output is
deterministic (dated relative to seedkit.ANCHOR).

Orders are seeded completed or in an open state; completed member orders earn their points
through the pack's `earn_points_for_recorded_orders` automation while seeding, so the points
ledger is not written here except for gifts and redemptions. Records whose title the engine
assigns (autonumbers) are referenced by id: the n-th order of a fresh database has id n, and
the standard layer seeds its orders first (the loader goes by reference order, then file
order), so this generator references no order.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "metadata" / "tools"))
from seedkit import ANCHOR, Gen, iso, stamp, write_seed  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "seed"
g = Gen(20261206)

REGIONS = [("华东区", "EC", ["上海", "杭州", "苏州", "南京", "宁波"]), ("华北区", "NC", ["北京", "天津", "济南", "青岛"]),
           ("华南区", "SC", ["广州", "深圳", "厦门", "福州"]), ("华中区", "CC", ["武汉", "长沙", "郑州"]),
           ("西南区", "SW", ["成都", "重庆", "昆明"]), ("西北区", "NW", ["西安", "兰州"]),
           ("东北区", "NE", ["沈阳", "大连", "哈尔滨"])]
CHANNELS = [("自营门店", "OWN", "own_store", 0), ("加盟门店", "FRA", "franchise", 0), ("官方商城", "MALL", "online_mall", 0),
            ("天猫旗舰店", "TMALL", "marketplace", 5), ("京东自营", "JD", "marketplace", 8),
            ("微信小程序", "MINI", "mini_program", 0), ("经销商渠道", "DEALER", "dealer", 0)]
CATEGORIES = [("茶叶 / Tea", "绿茶、红茶、乌龙、普洱、花茶 / Green, black, oolong, pu'er and scented teas"),
              ("茶具 / Teaware", "茶壶、茶杯、旅行茶具 / Teapots, cups and travel sets"),
              ("茶食 / Tea snacks", "茶点与坚果 / Biscuits and nuts"),
              ("礼盒 / Gift boxes", "节日礼盒 / Festival gift boxes")]
PRODUCTS = [  # name, code, category, retail price
    ("西湖龙井 250g", "T-LJ-250", 0, 398.0), ("正山小种 200g", "T-ZS-200", 0, 168.0),
    ("安溪铁观音 250g", "T-TGY-250", 0, 228.0), ("云南普洱饼茶 357g", "T-PE-357", 0, 288.0),
    ("福鼎白茶 200g", "T-BC-200", 0, 256.0), ("茉莉花茶 100g", "T-ML-100", 0, 68.0),
    ("大红袍 125g", "T-DHP-125", 0, 318.0), ("冷泡茶组合 10袋", "T-CB-10", 0, 49.0),
    ("青瓷盖碗套装", "W-QC-01", 1, 268.0), ("紫砂壶 西施", "W-ZS-01", 1, 680.0),
    ("玻璃公道杯", "W-GD-01", 1, 58.0), ("便携旅行茶具", "W-TR-01", 1, 198.0),
    ("手工曲奇 200g", "S-QQ-200", 2, 45.0), ("抹茶酥 8枚", "S-MC-8", 2, 39.0),
    ("坚果拼盘 500g", "S-JG-500", 2, 89.0), ("桂花糕 12枚", "S-GH-12", 2, 36.0),
    ("中秋茶礼盒", "G-ZQ-01", 3, 598.0), ("新春茶礼盒", "G-XC-01", 3, 498.0),
    ("商务茶礼盒", "G-SW-01", 3, 888.0), ("品鉴小罐茶 12罐", "G-XG-12", 3, 268.0)]
PRICE = {p[0]: p[3] for p in PRODUCTS}
# products bought together (the basket report should find these): a main product, its partner
PAIRS = [("西湖龙井 250g", "青瓷盖碗套装"), ("正山小种 200g", "手工曲奇 200g"), ("云南普洱饼茶 357g", "紫砂壶 西施"),
         ("茉莉花茶 100g", "桂花糕 12枚"), ("安溪铁观音 250g", "玻璃公道杯"), ("冷泡茶组合 10袋", "便携旅行茶具"),
         ("福鼎白茶 200g", "抹茶酥 8枚"), ("中秋茶礼盒", "坚果拼盘 500g")]
MAIN_WEIGHTS = [6, 5, 4, 4, 3, 6, 3, 5]
TIER_DISCOUNT = {"standard": 1.0, "silver": 0.98, "gold": 0.95, "platinum": 0.9}
TIER_OF = lambda spend: "platinum" if spend >= 8000 else "gold" if spend >= 3000 else "silver" if spend >= 1000 else "standard"  # noqa: E731
STORE_PATTERNS = ["{c}万象城店", "{c}太古里店", "{c}万达广场店", "{c}银泰店", "{c}老街店"]
DEALER_NAMES = ["茗香", "福源", "聚茗", "雅韵", "德馨", "泰和", "禾丰", "清源", "瑞祥", "隆昌", "鼎盛", "嘉和", "恒泰", "永兴"]


def main() -> None:
    files: list[tuple[str, str, list[dict], str]] = []

    def add(name, entity, records, header):
        files.append((name, entity, records, header))

    add("01_sales_regions.yaml", "sales_region",
        [{"name": n, "code": c, "manager": "channel_manager"} for n, c, _ in REGIONS], "Sales regions")
    add("02_sales_channels.yaml", "sales_channel",
        [{"name": n, "code": c, "kind": k, "platform_fee_rate": fee, "manager": "channel_manager"}
         for n, c, k, fee in CHANNELS], "Every sales channel, managed in one place")
    add("03_product_categories.yaml", "product_category",
        [{"name": n, "description": d} for n, d in CATEGORIES], "The tea brand's product categories")
    add("04_products.yaml", "product",
        [{"name": n, "code": c, "category": CATEGORIES[cat][0], "unit": "件", "unit_price": price}
         for n, c, cat, price in PRODUCTS], "The tea brand's products")

    # dealers (customers of kind dealer), two per region
    dealers = []
    for i, (region, code, cities) in enumerate(REGIONS):
        for j in range(2):
            city = cities[j % len(cities)]
            name = f"{city}{DEALER_NAMES[(i * 2 + j) % len(DEALER_NAMES)]}茶业有限公司"
            dealers.append({"name": name, "customer_kind": "dealer", "code": f"D-{code}-{j + 1}",
                            "dealer_level": "provincial" if j == 0 else "city", "sales_region": region,
                            "region": city, "dealer_since": iso(g.days_ago(400, 2000)), "industry": "wholesale_retail",
                            "credit_limit": 500000.0 if j == 0 else 200000.0, "phone": g.landline(),
                            "owner": "channel_manager"})
    # terminals: own and franchise stores in the cities, dealers' shops, online shops
    terminals = []
    n = 0
    for region, code, cities in REGIONS:
        for c in cities:
            n += 1
            kind_channel = "自营门店" if n % 3 != 0 else "加盟门店"
            terminals.append({"name": STORE_PATTERNS[n % len(STORE_PATTERNS)].format(c=c), "code": f"S{n:03d}",
                              "channel": kind_channel, "kind": "store" if n % 4 else "counter", "sales_region": region,
                              "city": c, "address": f"{c}市中心商业街{g.rng.randint(1, 300)}号",
                              "opened_on": iso(g.days_ago(200, 1500)), "area_m2": float(g.rng.randint(40, 220)),
                              "status": "open", "owner": "channel_manager"})
    for d in dealers:
        n += 1
        terminals.append({"name": d["name"].replace("茶业有限公司", "茶庄"), "code": f"S{n:03d}", "channel": "经销商渠道",
                          "kind": "dealer_shop", "sales_region": d["sales_region"], "city": d["region"],
                          "dealer": d["name"], "opened_on": iso(g.days_ago(100, 900)), "status": "open",
                          "owner": "channel_manager"})
    for name, channel in (("官方商城", "官方商城"), ("天猫旗舰店", "天猫旗舰店"), ("京东自营店", "京东自营"), ("小程序商城", "微信小程序")):
        n += 1
        terminals.append({"name": name, "code": f"S{n:03d}", "channel": channel, "kind": "online_shop",
                          "sales_region": "华东区", "status": "open", "owner": "channel_manager"})
    stores_by_channel: dict[str, list[dict]] = {}
    for t in terminals:
        stores_by_channel.setdefault(t["channel"], []).append(t)

    # members: their orders decide their spending and so their tier
    members = []
    for i in range(400):
        name, _ = g.person(three_chars=i % 3 == 0)
        region = g.pick(REGIONS)
        home = g.pick([t for t in terminals if t["sales_region"] == region[0] and t["kind"] in ("store", "counter")]
                      or terminals[:5])
        birthday = dt.date(g.rng.randint(1965, 2004), g.rng.randint(1, 12), g.rng.randint(1, 28))
        members.append({"name": name, "customer_kind": "member", "mobile": g.mobile(),
                        "gender": g.weighted([("female", 6), ("male", 4)]), "birthday": iso(birthday),
                        "member_since": iso(g.days_ago(30, 1500)), "signup_channel": home["channel"],
                        "home": home["name"],
                        "sales_region": region[0], "region": home.get("city"), "source": "other",
                        "owner": g.weighted([("store_clerk", 3), ("member_service", 1)])})
    # price lists: national retail price, marketplace prices, tier prices, regional dealer prices
    prices = []
    start = iso(ANCHOR - dt.timedelta(days=400))
    for name, code, cat, price in PRODUCTS:
        prices.append({"product": name, "price": price, "valid_from": start, "note": "全国统一零售价", "owner": "channel_manager"})
        prices.append({"product": name, "channel": "天猫旗舰店", "price": round(price * 0.95, 1), "valid_from": start,
                       "note": "天猫活动价", "owner": "channel_manager"})
        for tier in ("silver", "gold", "platinum"):
            prices.append({"product": name, "tier": tier, "price": round(price * TIER_DISCOUNT[tier], 1),
                           "valid_from": start, "note": "会员价", "owner": "channel_manager"})
        for region, _, _ in REGIONS:
            factor = 0.55 if region in ("华东区", "华南区") else 0.58
            prices.append({"product": name, "channel": "经销商渠道", "sales_region": region,
                           "price": round(price * factor, 1), "valid_from": start, "note": "区域经销价",
                           "owner": "channel_manager"})
    # a Double-11 marketplace price, valid eleven days, with a higher priority
    for name, _, _, price in PRODUCTS[:8]:
        prices.append({"product": name, "channel": "天猫旗舰店", "price": round(price * 0.85, 1),
                       "valid_from": iso(ANCHOR.replace(month=11, day=1)), "valid_to": iso(ANCHOR.replace(month=11, day=11)),
                       "priority": 10, "note": "双11活动价", "owner": "channel_manager"})
    add("05_sales_regions_products.yaml", "regional_product",
        [{"sales_region": r, "product": p[0], "available_from": start,
          "min_order_qty": 10 if p[2] != 1 else 5, "exclusive": p[1] == "T-DHP-125" and r == "华南区"}
         for r, _, _ in REGIONS for p in PRODUCTS if not (p[2] == 3 and r in ("西北区", "东北区") and p[1] == "G-SW-01")],
        "Which products each region sells")
    add("06_dealers.yaml", "customer", dealers, "Dealers, two per region")
    add("07_terminals.yaml", "terminal", terminals, "Stores, counters, dealers' shops and online shops")
    add("08_members.yaml", "customer", members, "Members (consumers)")  # `home` is dropped below
    add("09_price_list.yaml", "price_list_entry", prices, "Price lists per channel, region and member tier")

    campaigns = [
        {"name": "会员日·金秋品茗季", "kind": "promotion", "start_date": iso(ANCHOR - dt.timedelta(days=80)),
         "end_date": iso(ANCHOR - dt.timedelta(days=50)), "budget": 80000.0, "target_tiers": ["gold", "platinum"],
         "objective": "提升高等级会员复购", "status": "completed", "owner": "marketing"},
        {"name": "双11全渠道大促", "kind": "promotion", "start_date": iso(ANCHOR.replace(month=11, day=1)),
         "end_date": iso(ANCHOR.replace(month=11, day=11)), "budget": 200000.0,
         "target_tiers": ["standard", "silver", "gold", "platinum"], "objective": "拉新与清库存", "status": "completed",
         "owner": "marketing"},
        {"name": "春茶上新品鉴会", "kind": "promotion", "start_date": iso(ANCHOR - dt.timedelta(days=230)),
         "end_date": iso(ANCHOR - dt.timedelta(days=200)), "budget": 50000.0, "target_tiers": ["silver", "gold", "platinum"],
         "objective": "新茶推广", "status": "completed", "owner": "marketing"},
    ]
    add("10_sales_activities.yaml", "campaign", campaigns, "Sales activities for members")
    promos = [
        ("春茶尝鲜9折", "percent_off", None, None, -230, -200, {"discount": 10}, "春茶上新品鉴会"),
        ("满500减50", "amount_off", None, None, -170, -140, {"min_spend": 500.0, "amount_off": 50.0}, None),
        ("买龙井赠曲奇", "gift", "自营门店", None, -120, -90, {"gift_product": "手工曲奇 200g"}, None),
        ("金卡会员积分翻倍", "points_multiplier", None, "gold", -80, -50, {"points_multiplier": 2.0}, "会员日·金秋品茗季"),
        ("双11天猫满300减30", "amount_off", "天猫旗舰店", None, -19, -9, {"min_spend": 300.0, "amount_off": 30.0}, "双11全渠道大促"),
        ("双11商城85折", "percent_off", "官方商城", None, -19, -9, {"discount": 15}, "双11全渠道大促"),
        ("冬季暖茶礼", "gift", None, None, -5, 40, {"gift_product": "桂花糕 12枚", "min_spend": 300.0}, None),
        ("新春礼盒预售", "percent_off", "微信小程序", None, 30, 70, {"discount": 12}, None),
    ]
    promotions = []
    for name, kind, channel, tier, s, e, extra, campaign in promos:
        sd, ed = ANCHOR + dt.timedelta(days=s), ANCHOR + dt.timedelta(days=e)
        state = "ended" if e < 0 else ("running" if s <= 0 else "approved")
        promotions.append({"name": name, "kind": kind, "channel": channel, "tier": tier, "start_date": iso(sd),
                           "end_date": iso(ed), "campaign": campaign, "state": state, "budget": 30000.0,
                           "owner": "marketing", **extra})
    add("11_promotions.yaml", "promotion", promotions, "Promotions: discounts, spend-and-save, gifts, extra points")

    # a year of member orders, few lines each
    orders = []
    spend = {m["name"]: 0.0 for m in members}
    loyal = members[:80]  # buy often and much
    online_channels = ["官方商城", "天猫旗舰店", "京东自营", "微信小程序"]
    for i in range(2400):
        r = g.rng.random()
        m = g.pick(members[:12]) if r < 0.1 else g.pick(loyal) if r < 0.5 else g.pick(members)
        day = ANCHOR - dt.timedelta(days=g.rng.randint(0, 340))
        channel = g.weighted([("自营门店", 40), ("加盟门店", 15), ("官方商城", 12), ("天猫旗舰店", 15), ("京东自营", 8), ("微信小程序", 10)])
        store = g.pick(stores_by_channel[channel])
        if channel in ("自营门店", "加盟门店"):
            region_stores = [t for t in stores_by_channel[channel] if t["sales_region"] == m["sales_region"]]
            store = g.pick(region_stores) if region_stores else store
        main = g.weighted(list(zip(PAIRS, MAIN_WEIGHTS)))
        items = [main[0]]
        if g.rng.random() < 0.55:
            items.append(main[1])
        if m in members[:12] and g.rng.random() < 0.6:  # big spenders add business gift boxes
            items.append("商务茶礼盒")
        if g.rng.random() < 0.2:
            extra = g.pick(PRODUCTS)[0]
            if extra not in items:
                items.append(extra)
        promo = None
        for p in promotions:
            if p["state"] in ("running", "ended") and p["start_date"] <= iso(day) <= p["end_date"] \
                    and (p["channel"] in (None, channel)) and p["tier"] is None and g.rng.random() < 0.7:
                promo = p
                break
        tier = "standard"  # prices at the member's tier of the time are left to the price list
        lines = [{"product": name, "quantity": 1 if PRICE[name] > 150 else g.pick([1, 1, 2, 3]),
                  "unit_price": round(PRICE[name] * (0.95 if channel == "天猫旗舰店" else 1.0), 1)} for name in items]
        if promo and promo["kind"] == "gift":
            lines.append({"product": promo["gift_product"], "quantity": 1, "unit_price": 0.0, "is_gift": True})
        total = sum(l["quantity"] * l["unit_price"] for l in lines)
        if promo and promo["kind"] != "gift" and total < promo.get("min_spend", 0):
            promo = None
        if promo and promo["kind"] == "gift" and total < promo.get("min_spend", 0):
            promo, lines = None, [l for l in lines if not l.get("is_gift")]
        recent = (ANCHOR - day).days < 6
        state = g.weighted([("completed", 5), ("delivered", 1), ("shipped", 1), ("paid", 1), ("cancelled", 1)]) \
            if recent else ("cancelled" if g.rng.random() < 0.03 else "completed")
        online = channel in online_channels
        order = {"customer": m["name"], "channel": channel, "store": store["name"], "order_date": iso(day),
                 "promotion": promo["name"] if promo else None, "lines": lines, "state": state,
                 "payment_status": "paid" if state != "cancelled" else "unpaid",
                 "pay_method": (g.pick(["wechat_pay", "alipay", "unionpay"]) if online else g.pick(["wechat_pay", "alipay", "cash", "unionpay"]))
                 if state != "cancelled" else None,
                 "owner": "store_clerk"}
        net = total - (round(total * promo["discount"] / 100.0, 2) if promo and promo["kind"] == "percent_off"
                       else promo["amount_off"] if promo and promo["kind"] == "amount_off" else 0.0)
        if state != "cancelled":
            order["payment_txn"] = f"PAY{day.strftime('%Y%m%d')}{i:06d}"
            order["gateway_amount"] = round(net, 2)
        if state == "completed":  # only completed orders earn points, and so count for the tier
            spend[m["name"]] += net
        if online and state in ("shipped", "delivered", "paid"):
            order["delivery_date"] = iso(day + dt.timedelta(days=3))
            order["shipping_address"] = f"{m['region'] or '上海'}市某小区{g.rng.randint(1, 30)}栋"
        orders.append(order)
    for m in members:
        m["member_tier"] = TIER_OF(spend[m["name"]])
    # dealer orders at the regional dealer price
    for i in range(84):
        d = dealers[i % len(dealers)]
        day = ANCHOR - dt.timedelta(days=g.rng.randint(0, 340))
        factor = 0.55 if d["sales_region"] in ("华东区", "华南区") else 0.58
        picks = g.rng.sample(PRODUCTS[:8], 2) + ([g.pick(PRODUCTS[8:])] if g.rng.random() < 0.5 else [])
        lines = [{"product": p[0], "quantity": g.rng.randint(2, 12) * 10, "unit_price": round(p[3] * factor, 1)} for p in picks]
        state = "completed" if (ANCHOR - day).days > 20 else g.pick(["confirmed", "shipped", "delivered"])
        orders.append({"customer": d["name"], "channel": "经销商渠道", "order_date": iso(day), "lines": lines, "state": state,
                       "delivery_date": iso(day + dt.timedelta(days=5)), "shipping_address": f"{d['region']}物流园",
                       "owner": "channel_manager"})
    orders.sort(key=lambda o: o["order_date"])
    add("12_retail_orders.yaml", "order", orders, "A year of member orders and dealer orders")

    # points: gifts and redemptions (earned points come from the orders, through an automation)
    points = []
    for m in members[:200]:
        if g.rng.random() < 0.5:
            points.append({"member": m["name"], "kind": "gift", "points": g.pick([100, 200, 300]),
                           "entry_date": iso(g.days_ago(10, 300)), "reason": g.pick(["新会员入会礼", "推荐好友奖励", "问卷调查奖励"]),
                           "owner": "member_service"})
    for m in members[:120]:
        if spend[m["name"]] > 1500 and g.rng.random() < 0.6:
            reward, cost = g.pick([("玻璃公道杯", 600), ("手工曲奇 200g", 450), ("品鉴小罐茶 12罐", 2600), ("便携旅行茶具", 2000)])
            if cost <= spend[m["name"]] * 0.5:
                points.append({"member": m["name"], "kind": "redeemed", "points": -cost, "reward": reward,
                               "entry_date": iso(ANCHOR - dt.timedelta(days=g.rng.randint(0, 5))), "owner": "member_service"})
    add("13_points.yaml", "points_entry", points, "Gift points and redemptions")
    changes = []
    for m in members:
        if m["member_tier"] != "standard":
            changes.append({"member": m["name"], "from_tier": "standard" if m["member_tier"] == "silver" else "silver",
                            "to_tier": m["member_tier"], "direction": "upgrade", "spend_12m": spend[m["name"]],
                            "changed_on": iso(g.days_ago(1, 200))})
        elif spend[m["name"]] > 0 and g.rng.random() < 0.08:
            changes.append({"member": m["name"], "from_tier": "silver", "to_tier": "standard", "direction": "downgrade",
                            "spend_12m": spend[m["name"]], "changed_on": iso(g.days_ago(1, 200))})
    add("14_member_tier_changes.yaml", "member_tier_change", changes, "Past tier upgrades and downgrades")
    care = []
    for m in members[:180]:
        kind = g.weighted([("birthday", 4), ("holiday", 3), ("after_sale", 2), ("win_back", 1)])
        care.append({"subject": {"birthday": "生日问候", "holiday": "中秋节问候", "after_sale": "购后回访",
                                 "win_back": "沉睡会员唤醒"}[kind] + f" / {m['name']}",
                     "member": m["name"], "kind": kind, "channel": g.pick(["sms", "wechat", "phone"]),
                     "cared_on": iso(g.days_ago(1, 300)), "gift_points": 200 if kind == "birthday" else 0,
                     "message": "感谢您一直以来的支持", "owner": m["owner"]})
    add("15_care_records.yaml", "care_record", care, "Birthday greetings and other customer care")
    complaints = []
    for i in range(40):
        m = g.pick(members)
        cat = g.weighted([("product_quality", 3), ("staff", 2), ("delivery", 2), ("price", 1), ("points", 1), ("other", 1)])
        logged = g.days_ago(1, 300)
        state = "closed" if (ANCHOR - logged).days > 15 else g.pick(["new", "in_progress", "resolved"])
        done = state in ("resolved", "closed")
        complaints.append({"subject": {"product_quality": "茶叶受潮结块", "staff": "店员态度冷淡", "delivery": "快递延误破损",
                                       "price": "活动价未生效", "points": "积分未到账", "other": "包装与描述不符"}[cat],
                           "customer": m["name"], "kind": "complaint", "complaint_category": cat,
                           "store": m["home"], "priority": "high" if cat == "product_quality" else "normal",
                           "channel": g.pick(["phone", "chat", "onsite"]), "description": "会员来电投诉，要求处理",
                           "resolution": "已致歉并补偿" if done else None,
                           "resolved_at": stamp(logged + dt.timedelta(days=1), 15) if done else None,
                           "goodwill_points": 200 if done and cat in ("product_quality", "points") else 0,
                           "satisfaction": g.rng.randint(3, 5) if done else None, "state": state,
                           "owner": "service_agent"})
    add("16_complaints.yaml", "ticket", complaints, "Member complaints")
    fees = []
    for t in terminals:
        if t["kind"] in ("store", "counter", "dealer_shop"):
            for month in range(3):
                period = (ANCHOR.replace(day=1) - dt.timedelta(days=30 * month)).replace(day=1)
                kind = "rent" if t["channel"] == "自营门店" else g.pick(["display", "promoter", "rebate"])
                planned = g.money(3000, 30000)
                state = "planned" if month == 0 else ("paid" if month == 2 else g.pick(["approved", "paid"]))
                actual = round(planned * g.pick([0.9, 1.0, 1.0, 1.05, 1.25]), 0) if state == "paid" else None
                fees.append({"terminal": t["name"], "kind": kind, "period": iso(period), "planned_amount": planned,
                             "actual_amount": actual, "paid_on": iso(period + dt.timedelta(days=20)) if actual else None,
                             "note": "超出部分为节日加场" if actual and actual > planned * 1.1 else None,
                             "state": state, "owner": "channel_manager"})
    add("17_terminal_fees.yaml", "terminal_fee", fees, "Terminal fees, planned and paid")
    add("18_dealer_users.yaml", "dealer_user",
        [{"account": "dealer", "dealer": dealers[0]["name"], "since": iso(g.days_ago(100, 300))}],
        "The demo user `dealer` works for the first dealer")
    stock = []
    for d in dealers:
        for p in PRODUCTS[:6]:
            opening = g.rng.randint(50, 400)
            for month in (2, 1):
                period = (ANCHOR.replace(day=1) - dt.timedelta(days=28 * month)).replace(day=1)
                received = g.rng.randint(0, 300)
                sold = g.rng.randint(5, 250) if d is not dealers[3] else g.rng.randint(1, 10)
                closing = max(0, opening + received - sold)
                diff = g.rng.random() < 0.1 and closing > 5
                stock.append({"dealer": d["name"], "product": p[0], "period": iso(period), "opening_stock": opening,
                              "received": received, "sold": min(sold, opening + received),
                              "closing_stock": closing - (3 if diff else 0),
                              "difference_note": "盘点发现破损3件" if diff else None,
                              "source": g.pick(["dealer_portal", "dealer_portal", "import"]),
                              "state": "confirmed" if month == 2 else "submitted", "owner": "channel_manager"})
                opening = closing - (3 if diff else 0)
    add("19_dealer_stock_reports.yaml", "dealer_stock_report", stock, "Dealers' monthly stock and sell-through")
    evals = []
    for d in dealers:
        for period, state in (("2025", "archived"), ("2026-H1", "approved")):
            scores = [g.rng.randint(8, 20) for _ in range(5)]
            evals.append({"dealer": d["name"], "period": period, "credit_score": scores[0], "sales_score": scores[1],
                          "stock_score": scores[2], "coverage_score": scores[3], "service_score": scores[4],
                          "target_amount": 1000000.0, "achieved_amount": g.money(500000, 1300000, 1000),
                          "overdue_days": g.rng.randint(0, 40), "comments": "综合评估意见见附件", "state": state,
                          "owner": "channel_manager"})
    add("20_dealer_evaluations.yaml", "dealer_evaluation", evals, "Dealer credit and capability evaluations")
    events = [("春茶新品培训", "product_training", None, -200, "held"), ("门店销售技巧训练营", "sales_training", "华东区", -90, "held"),
              ("年度经销商大会", "dealer_meeting", None, -40, "held"), ("茶艺师认证培训（华南）", "product_training", "华南区", -20, "held"),
              ("新春礼盒订货会", "launch", None, 20, "open"), ("冬季陈列培训", "sales_training", None, 45, "planned")]
    ev = []
    for title, kind, region, offset, state in events:
        ev.append({"title": title, "kind": kind, "sales_region": region,
                   "starts_at": stamp(ANCHOR + dt.timedelta(days=offset), 9), "hours": 6.0 if kind != "dealer_meeting" else 8.0,
                   "location": "杭州总部培训中心" if region is None else f"{region}分公司会议室", "trainer": "总部培训部",
                   "capacity": 80, "state": state, "owner": "channel_manager"})
    add("21_dealer_events.yaml", "dealer_event", ev, "Dealer training sessions and meetings")
    att = []
    for e in ev:
        if e["state"] == "planned":
            continue
        invited = [d for d in dealers if e["sales_region"] in (None, d["sales_region"])]
        for d in invited:
            for k in range(g.rng.randint(1, 2)):
                name, _ = g.person()
                came = e["state"] == "held" and g.rng.random() < 0.85
                att.append({"event": e["title"], "dealer": d["name"], "attendee": name,
                            "job_title": g.pick(["店长", "销售经理", "总经理", "导购"]), "attended": came,
                            "exam_score": g.rng.randint(55, 98) if came and e["kind"] != "dealer_meeting" else None})
    add("22_dealer_attendance.yaml", "dealer_event_attendance", att, "Who registered and who came")
    tasks = []
    for i in range(40):
        d = dealers[i % len(dealers)]
        kind = g.pick(["promotion_support", "display", "stock_transfer", "market_feedback", "new_terminal"])
        state = g.weighted([("done", 3), ("in_progress", 1), ("open", 1)])
        tasks.append({"subject": {"promotion_support": "双11促销物料支持", "display": "新品陈列布置", "stock_transfer": "滞销品调货",
                                  "market_feedback": "竞品降价反馈", "new_terminal": "新开商超专柜"}[kind],
                      "dealer": d["name"], "kind": kind, "due_on": iso(g.days_ahead(-30, 30)),
                      "details": "请协助处理", "response": "已完成" if state == "done" else None, "state": state,
                      "owner": "channel_manager"})
    add("23_dealer_tasks.yaml", "dealer_task", tasks, "Joint tasks and requests with dealers")

    for m in members:
        del m["home"]  # the store the member shops at: used for their complaints only
    for old in OUT.glob("*.yaml"):
        old.unlink()
    for name, entity, recs, header in files:
        write_seed(OUT, name, entity, recs, header)
    print(f"{sum(len(r) for _, _, r, _ in files)} records in {len(files)} files")


if __name__ == "__main__":
    main()
