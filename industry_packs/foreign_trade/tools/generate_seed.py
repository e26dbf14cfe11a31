"""Write industry_packs/foreign_trade/seed/: the foreign trade and electronics pack's sample records.

A Shenzhen exporter of electronic and electrical products (solar inverters, portable power
stations, LED lighting, smart-home devices, their components, spare parts and accessories)
that buys from factories in the Pearl and Yangtze River deltas and sells to importers,
distributors, retail chains, brand owners, contractors and design institutes abroad, in USD,
EUR and (for a few) CNY: costing rates, suppliers, RFQs with competing supplier quotes,
selling prices (from awarded RFQs, agreed with customers, and the export price list),
customers with credit ratings, limits and payment terms, their contacts (with the addresses
their mail comes from), opportunities from B2B platforms, fairs and mail, quotations, a year
and a half of orders with their payments, serial numbers of the serialised units shipped,
samples and spare issues. It adds to the standard model's sample data (metadata/seed/). Run
`python3 industry_packs/foreign_trade/tools/generate_seed.py`; the output is deterministic
(dated relative to seedkit.ANCHOR). It also writes `exchange_rates.csv`, the market rates
reports convert with (`crm rates import`), and `mailbox/sample.mbox`, correspondence with the
sample customers and suppliers (`crm mail import`).

Records whose title the engine assigns (autonumbers) are referenced by id: the standard layer
seeds its orders and quotes first (the loader goes by reference order, then file order), so
the n-th order of this pack has id (standard orders + n); the offsets are read from the
standard seed files.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
import unicodedata
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "metadata" / "tools"))
from seedkit import ANCHOR, Gen, iso, write_seed  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "seed"
g = Gen(20261210)


def standard_count(name: str) -> int:
    doc = yaml.safe_load((ROOT / "metadata" / "seed" / name).read_text(encoding="utf-8"))
    return len(doc["records"])


ORDER_OFFSET = standard_count("10_orders.yaml")
QUOTE_OFFSET = standard_count("09_quotes.yaml")

# ------------------------------------------------------------------ rates

# CNY per unit at the start of each month, about the bank's middle rate; the costing rate
# finance fixes is 1.5 % below it (a cushion against the rate falling before payment)
def market_rate(currency: str, day: dt.date) -> float:
    months = (ANCHOR.year - day.year) * 12 + ANCHOR.month - day.month
    if currency == "USD":
        return round(7.12 + 0.06 * ((months * 7) % 5 - 2) / 2 + 0.004 * months, 4)
    return round(7.78 + 0.09 * ((months * 3) % 5 - 2) / 2 - 0.006 * months, 4)


def _months(count: int) -> list[dt.date]:
    """The first days of the `count` months up to ANCHOR's, oldest first."""
    firsts, year, month = [], ANCHOR.year, ANCHOR.month
    for _ in range(count):
        firsts.append(dt.date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return firsts[::-1]


MONTHS = _months(26)


def costing_rates():
    records = [{"currency": "CNY", "rate": 1.0, "valid_from": "2020-01-01", "note": "人民币 / Renminbi"}]
    for currency in ("USD", "EUR"):
        for i, first in enumerate(MONTHS):
            nxt = MONTHS[i + 1] - dt.timedelta(days=1) if i + 1 < len(MONTHS) else None
            records.append({"currency": currency, "rate": round(market_rate(currency, first) * 0.985, 4),
                            "valid_from": iso(first), "valid_to": iso(nxt) if nxt else None,
                            "note": f"{first:%Y-%m} 财务核算汇率 / costing rate"})
    return records


def write_market_rates():
    with (OUT / "exchange_rates.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["currency", "day", "rate"])
        for currency in ("USD", "EUR"):
            for first in MONTHS:
                for day_of_month in (1, 15):
                    day = first.replace(day=day_of_month)
                    if day <= ANCHOR + dt.timedelta(days=30):
                        wobble = 0.01 if day_of_month == 15 else 0.0
                        writer.writerow([currency, iso(day), f"{market_rate(currency, first) + wobble:.4f}"])


def costing_rate(currency: str, day: dt.date) -> float:
    if currency == "CNY":
        return 1.0
    first = max(m for m in MONTHS if m <= day)
    return round(market_rate(currency, first) * 0.985, 4)


# ------------------------------------------------------------------ products and suppliers

CATEGORIES = [("光伏储能 / Solar and storage", "逆变器、便携储能电源、储能电池 / Inverters, power stations, batteries"),
              ("LED照明 / LED lighting", "面板灯、工矿灯、路灯 / Panel, high-bay and street lights"),
              ("智能家居 / Smart home", "智能插座、网关、传感器 / Smart plugs, gateways, sensors"),
              ("元器件与配件 / Components and accessories", "电源模块、线缆、安装件 / Power modules, cables, mounts"),
              ("备件 / Spare parts", "整机维修备件 / Parts for repairs")]
# name, code, category, kind, serialized, list price (USD), standard cost (CNY), stock, hs code, spare_for
PRODUCTS = [
    ("并网逆变器 5kW / Grid-tie inverter 5kW", "INV-5K", 0, "finished", True, 620.0, 3380.0, 140, "8504403090", None),
    ("储能逆变器 10kW / Hybrid inverter 10kW", "INV-10H", 0, "finished", True, 1450.0, 8150.0, 60, "8504403090", None),
    ("便携储能电源 1000Wh / Portable power station 1000Wh", "PPS-1000", 0, "finished", True, 389.0, 2150.0, 420, "8507600090", None),
    ("储能电池包 5kWh / Battery pack 5kWh", "BAT-5K", 0, "finished", True, 980.0, 5460.0, 35, "8507600090", None),
    ("LED面板灯 600×600 40W / LED panel 600x600 40W", "LED-PNL-40", 1, "finished", False, 14.5, 72.0, 6800, "9405119000", None),
    ("LED工矿灯 150W / LED high-bay 150W", "LED-HB-150", 1, "finished", False, 46.0, 238.0, 1500, "9405119000", None),
    ("LED路灯 100W / LED street light 100W", "LED-ST-100", 1, "finished", False, 58.0, 300.0, 800, "9405409000", None),
    ("智能插座 WiFi / Smart plug WiFi", "SH-PLUG", 2, "finished", False, 6.8, 33.0, 12000, "8536690000", None),
    ("智能家居网关 / Smart home gateway", "SH-GW", 2, "finished", True, 39.0, 196.0, 900, "8517620000", None),
    ("门窗传感器 / Door and window sensor", "SH-DS", 2, "finished", False, 4.9, 23.0, 9000, "8531100000", None),
    ("LED驱动电源 40W / LED driver 40W", "CMP-DRV-40", 3, "component", False, 3.2, 15.5, 20000, "8504409999", None),
    ("光伏连接器 MC4 / Solar connector MC4", "CMP-MC4", 3, "accessory", False, 0.9, 4.2, 50000, "8536690000", None),
    ("逆变器壁挂支架 / Inverter wall mount", "ACC-MNT", 3, "accessory", False, 12.0, 58.0, 600, "7326909000", None),
    ("逆变器主控板 5kW / Inverter control board 5kW", "SP-INV5-CB", 4, "spare_part", False, 85.0, 420.0, 45, "8504409999", "INV-5K"),
    ("逆变器散热风扇 / Inverter cooling fan", "SP-INV-FAN", 4, "spare_part", False, 9.0, 41.0, 300, "8414591000", "INV-10H"),
    ("储能电源电池模组 / Power station battery module", "SP-PPS-BM", 4, "spare_part", False, 120.0, 610.0, 80, "8507600090", "PPS-1000"),
]
PRODUCT = {p[1]: p for p in PRODUCTS}
LIST_EUR = 0.92  # the euro price list: list price in USD times this

SUPPLIERS = [  # name, code, kind, rating, city, contact, email, main products (codes)
    ("深圳市华能电源科技有限公司", "SUP-HN", "factory", "a", "深圳", "陈志强", "sales@hn-power.example", ["INV-5K", "INV-10H", "CMP-DRV-40"]),
    ("东莞市明辉光电有限公司", "SUP-MH", "factory", "a", "东莞", "李海燕", "export@minghui-led.example", ["LED-PNL-40", "LED-HB-150", "LED-ST-100"]),
    ("宁波锐新储能科技有限公司", "SUP-RX", "factory", "b", "宁波", "王立新", "rx@ruixin-ess.example", ["PPS-1000", "BAT-5K", "SP-PPS-BM"]),
    ("中山市光宇照明电器厂", "SUP-GY", "factory", "b", "中山", "黄佳怡", "gy@guangyu-light.example", ["LED-PNL-40", "LED-HB-150", "LED-ST-100"]),
    ("深圳智联物联科技有限公司", "SUP-ZL", "factory", "a", "深圳", "周宇航", "biz@zhilian-iot.example", ["SH-PLUG", "SH-GW", "SH-DS"]),
    ("杭州晶科电子有限公司", "SUP-JK", "factory", "b", "杭州", "吴文博", "sales@jingke-ele.example", ["INV-5K", "INV-10H", "SP-INV5-CB"]),
    ("苏州汇通新能源有限公司", "SUP-HT", "trader", "b", "苏州", "徐慧敏", "ht@huitong-ne.example", ["PPS-1000", "BAT-5K", "CMP-MC4"]),
    ("佛山市安达五金制品有限公司", "SUP-AD", "factory", "c", "佛山", "梁永刚", "ad@anda-hw.example", ["ACC-MNT", "CMP-MC4", "SP-INV-FAN"]),
    ("广州宏远电子元件有限公司", "SUP-HY", "component", "b", "广州", "郭振宇", "hy@hongyuan-ec.example", ["CMP-DRV-40", "CMP-MC4", "SP-INV-FAN", "SP-INV5-CB"]),
    ("厦门联捷智能家居有限公司", "SUP-LJ", "factory", "c", "厦门", "林雪梅", "lj@lianjie-home.example", ["SH-PLUG", "SH-DS", "SH-GW"]),
]

# ------------------------------------------------------------------ customers

# name, country, kind, tier, rating, limit (CNY), terms, domain, insured
CUSTOMERS = [
    ("Nordlicht Elektro GmbH", "DE", "distributor", "a", "aaa", 3000000, "oa_60", "nordlicht.example", True),
    ("SolarHaus Vertriebs GmbH", "DE", "importer", "a", "aa", 2000000, "oa_30", "solarhaus.example", True),
    ("Brightway Supply Inc.", "US", "importer", "a", "aa", 2500000, "oa_30", "brightway.example", True),
    ("Sunbelt Energy Solutions LLC", "US", "contractor", "b", "a", 800000, "tt_30_70", "sunbelt-energy.example", False),
    ("Lakeside Home Retail Corp.", "US", "retailer", "a", "aa", 1500000, "oa_60", "lakeside-retail.example", True),
    ("Maple Grid Power Ltd.", "CA", "distributor", "b", "a", 600000, "tt_30_70", "maplegrid.example", False),
    ("Iluminación Azteca S.A. de C.V.", "MX", "distributor", "b", "b", 300000, "lc_sight", "iluminacion-azteca.example", False),
    ("Energia Verde Comércio Ltda.", "BR", "importer", "b", "b", 400000, "lc_sight", "energiaverde.example", False),
    ("Thames Lighting Ltd.", "GB", "distributor", "b", "aa", 900000, "oa_30", "thameslighting.example", True),
    ("Lumière Pro SARL", "FR", "distributor", "b", "a", 700000, "tt_30_70", "lumierepro.example", False),
    ("Casa Smart S.r.l.", "IT", "brand_owner", "a", "aa", 1200000, "oa_30", "casasmart.example", True),
    ("Sol y Sombra Energía S.L.", "ES", "contractor", "b", "a", 600000, "tt_30_70", "solysombra.example", False),
    ("Van Dijk Installatietechniek B.V.", "NL", "contractor", "b", "aa", 800000, "oa_30", "vandijk-it.example", True),
    ("Polska Energia Odnawialna Sp. z o.o.", "PL", "importer", "c", "b", 250000, "tt_30_70", "peo.example", False),
    ("Gulf Bright Trading LLC", "AE", "importer", "a", "a", 1500000, "lc_sight", "gulfbright.example", False),
    ("Al Noor Electrical Contracting Co.", "SA", "contractor", "b", "b", 500000, "lc_sight", "alnoor-elec.example", False),
    ("Shakti Power Systems Pvt. Ltd.", "IN", "distributor", "b", "b", 400000, "lc_sight", "shaktipower.example", False),
    ("Saigon Lighting JSC", "VN", "distributor", "c", "a", 300000, "tt_30_70", "saigonlighting.example", False),
    ("Siam Solar Engineering Co., Ltd.", "TH", "contractor", "c", "b", 200000, "tt_30_70", "siamsolar.example", False),
    ("Kuala Smart Living Sdn. Bhd.", "MY", "retailer", "c", "a", 250000, "tt_30_70", "kualasmart.example", False),
    ("Hoshino Denki K.K.", "JP", "brand_owner", "a", "aaa", 2000000, "oa_60", "hoshino-denki.example", True),
    ("Hanbit Design Institute", "KR", "design_institute", "c", None, None, None, "hanbit-di.example", False),
    ("Outback Solar Pty Ltd", "AU", "importer", "b", "aa", 900000, "oa_30", "outbacksolar.example", True),
    ("Cape Power Distributors (Pty) Ltd", "ZA", "distributor", "c", "b", 200000, "tt_30_70", "capepower.example", False),
    ("Lagos Bright Energy Ltd.", "NG", "importer", "c", "c", 100000, "tt_advance", "lagosbright.example", False),
    ("Rheinwerk Elektronik AG", "DE", "brand_owner", "b", "a", 600000, "tt_30_70", "rheinwerk.example", False),
    ("Pacific Crest Distributors Inc.", "US", "distributor", "b", "a", 700000, "tt_30_70", "pacificcrest.example", False),
    ("Emerald Isle Electrical Ltd.", "GB", "retailer", "c", "b", 200000, "tt_30_70", "emeraldisle.example", False),
    ("深圳市前海跨境贸易有限公司", "CN", "importer", "b", "aa", 1000000, "oa_30", "qianhai-trade.example", False),
    ("Desert Star General Trading FZE", "AE", "importer", "c", "c", 80000, "tt_advance", "desertstar.example", False),
]
FIRST = ["Anna", "Lukas", "Emma", "James", "Olivia", "Noah", "Sofia", "Mateo", "Chloé", "Luca", "Lucía", "Daan",
         "Zofia", "Omar", "Fatima", "Arjun", "Linh", "Somchai", "Aisha", "Kenji", "Min-jun", "Jack", "Thabo",
         "Chinedu", "Felix", "Grace", "Liam", "Mia", "Wei", "Yasmin"]
LAST = ["Schmidt", "Weber", "Miller", "Johnson", "Brown", "Tremblay", "Hernández", "Silva", "Clarke", "Dubois",
        "Rossi", "García", "de Vries", "Nowak", "Haddad", "Al-Harbi", "Sharma", "Nguyen", "Wongsakul", "Rahman",
        "Tanaka", "Kim", "Wilson", "Nkosi", "Okafor", "Becker", "Taylor", "Murphy", "Zhang", "Khalil"]
TITLES = [("Purchasing Manager", "purchasing"), ("Managing Director", "decision_maker"), ("Product Manager", "technical"),
          ("Buyer", "purchasing"), ("Technical Director", "technical"), ("Project Engineer", "user")]


def currency_of(country: str) -> str:
    if country == "CN":
        return "CNY"
    if country in ("DE", "FR", "IT", "ES", "NL"):
        return "EUR"
    return "USD"


def list_price(code: str, currency: str) -> float:
    usd = PRODUCT[code][5]
    if currency == "USD":
        return usd
    if currency == "EUR":
        return round(usd * LIST_EUR, 2)
    return round(usd * 7.1, 0)


OWNERS = ["sales_rep", "sales_rep", "sales_manager"]


def ascii_name(text: str) -> str:
    """A name as the local part of a mail address: lower case, accents and spaces dropped."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.yaml"):
        old.unlink()
    files: list[tuple[str, str, list, str]] = []

    def add(name, entity, records, header):
        files.append((name, entity, records, header))

    add("01_costing_rates.yaml", "costing_rate", costing_rates(),
        "Costing rates: USD and EUR month by month, 1.5 % below the market rate.")
    add("02_product_categories.yaml", "product_category",
        [{"name": n, "description": d} for n, d in CATEGORIES], "Product categories of the exporter.")
    products = []
    for name, code, cat, kind, serialized, usd, cost, stock, hs, spare_for in PRODUCTS:
        reserved = int(stock * g.rng.uniform(0.05, 0.35))
        products.append({"code": code, "name": name, "category": CATEGORIES[cat][0], "product_kind": kind,
                         "spare_for": PRODUCT[spare_for][0] if spare_for else None, "serialized": serialized,
                         "warranty_months": 60 if code.startswith("INV") else (24 if kind == "finished" else 6),
                         "hs_code": hs, "unit": "pcs", "unit_price": round(usd * 7.1, 0), "purchase_cost": cost,
                         "units_per_carton": 1 if usd > 300 else (4 if usd > 30 else 20),
                         "carton_gross_kg": round(g.rng.uniform(2, 28), 1), "carton_cbm": round(g.rng.uniform(0.01, 0.12), 3),
                         "stock_on_hand": stock, "stock_reserved": reserved,
                         "stock_as_of": f"{iso(ANCHOR)}T06:00:00Z", "active": True,
                         "description": f"{name}；海关编码 / HS {hs}"})
    # the power station is nearly sold out: the order test reads it as short of stock
    add("03_products.yaml", "product", products, "Products: finished units, components, accessories and spare parts.")
    suppliers = []
    for name, code, kind, rating, city, contact, email, _ in SUPPLIERS:
        suppliers.append({"name": name, "code": code, "kind": kind, "rating": rating, "city": city,
                          "contact_name": contact, "email": email, "phone": g.landline("0755"),
                          "main_products": "、".join(PRODUCT[c][0].split(" / ")[0] for c in _),
                          "payment_terms": g.pick(["月结30天 / 30 days net", "款到发货 / Cash before delivery",
                                                   "月结60天 / 60 days net"]),
                          "certificates": g.pick(["ISO 9001, CE, RoHS", "ISO 9001, UL, CE", "ISO 9001, CE, FCC",
                                                  "CE, RoHS"]), "owner": "purchaser"})
    add("04_suppliers.yaml", "supplier", suppliers, "Suppliers: factories, traders and component makers.")

    customers, contacts = [], []
    people = iter(range(1000))
    for name, country, kind, tier, rating, limit, terms, domain, insured in CUSTOMERS:
        owner = g.pick(OWNERS)
        customers.append({"name": name, "customer_kind": kind, "country": country, "tier": tier,
                          "key_account": tier == "a", "industry": "wholesale_retail" if kind in ("importer", "distributor", "retailer") else "energy",
                          "source": g.pick(["exhibition", "website", "referral", "partner"]),
                          "email": f"info@{domain}", "website": f"https://www.{domain}",
                          "credit_rating": rating, "credit_limit": limit, "payment_terms": terms,
                          "credit_insured": insured, "owner": owner,
                          "notes": f"{name}：{'重点客户' if tier == 'a' else '普通客户'} / {'key account' if tier == 'a' else 'regular account'}"})
        for k in range(2 if tier != "c" else 1):
            i = next(people)
            first, last = FIRST[(i * 7) % len(FIRST)], LAST[(i * 11 + k) % len(LAST)]
            title, role = TITLES[(i + k) % len(TITLES)]
            contacts.append({"customer": name, "name": f"{first} {last}", "title": title, "role_in_deal": role,
                             "email": f"{ascii_name(first)}.{ascii_name(last)}@{domain}",
                             "phone": f"+{g.rng.randint(1, 99)} {g.rng.randint(100, 999)} {g.rng.randint(1000000, 9999999)}",
                             "is_primary": k == 0, "owner": owner})
    add("05_customers.yaml", "customer", customers, "Customers abroad (and one at home) with credit ratings, limits and terms.")
    add("06_contacts.yaml", "contact", contacts, "Contacts, with the addresses their mail comes from.")
    owner_of = {c["name"]: c["owner"] for c in customers}
    cust = {c[0]: c for c in CUSTOMERS}

    # ---------------------------------------------------------- opportunities
    opportunities = []
    sources = [("b2b_platform", 5), ("trade_fair", 4), ("email", 4), ("website", 2), ("customs_data", 2),
               ("referral", 1), ("repeat", 3)]
    reasons = ["price", "competitor", "delivery", "product_fit", "timing", "no_budget"]
    for n in range(60):
        cname = CUSTOMERS[n % len(CUSTOMERS)][0]
        code = g.pick([p[1] for p in PRODUCTS if p[3] == "finished"])
        opened = g.days_ago(20, 400)
        stage = g.weighted([("prospecting", 3), ("qualification", 3), ("proposal", 3), ("negotiation", 2),
                            ("won", 4), ("lost", 3)])
        amount = round(list_price(code, "USD") * g.rng.choice([50, 100, 200, 300, 500]) * 7.1, -2)
        record = {"name": f"{PRODUCT[code][0].split(' / ')[1]} – {cname.split()[0]} #{n + 1}",
                  "customer": cname, "inquiry_source": g.weighted(sources), "product": PRODUCT[code][0],
                  "amount": amount, "opened_on": iso(opened), "stage": stage, "owner": owner_of[cname],
                  "description": f"询盘 / Inquiry: {PRODUCT[code][0]}"}
        if stage in ("won", "lost"):
            record["close_date"] = iso(min(opened + dt.timedelta(days=g.rng.randint(15, 90)), ANCHOR))
            record["probability"] = 100 if stage == "won" else 0
            if stage == "lost":
                record["loss_reason"] = g.pick(reasons)
        else:
            record["close_date"] = iso(g.days_ahead(10, 120))
            record["probability"] = {"prospecting": 10, "qualification": 20, "proposal": 50, "negotiation": 80}[stage]
            # a few are overdue for their follow-up, which the daily automation picks up
            record["next_follow_up"] = iso(g.days_ago(1, 10) if n % 6 == 0 else g.days_ahead(1, 14))
        opportunities.append(record)
    add("07_opportunities.yaml", "opportunity", opportunities, "Opportunities from B2B platforms, fairs, mail and repeat business.")

    # ---------------------------------------------------------- RFQs and supplier quotes
    rfqs, quotes, prices = [], [], []
    quote_no = 0
    awards: list[tuple[str, dt.date, float]] = []  # product code, quoted on, price
    for n in range(24):
        code = PRODUCTS[n % 13][1]  # finished units, components and accessories
        cname = CUSTOMERS[(n * 7) % len(CUSTOMERS)][0]
        currency = currency_of(cust[cname][1])
        opened = g.days_ago(15, 380) if n < 21 else g.days_ago(2, 12)
        state = "awarded" if n < 19 else ("inquiring" if n < 22 else ("draft" if n == 22 else "cancelled"))
        tier = cust[cname][3]
        margin = {"a": 12.0, "b": 15.0, "c": 20.0}[tier]
        target = round(PRODUCT[code][6] * 0.95, 2)
        rfqs.append({"subject": f"{PRODUCT[code][0].split(' / ')[0]} 询价 / RFQ for {cname.split()[0]}",
                     "product": PRODUCT[code][0], "quantity": g.pick([100, 200, 500, 1000]) if PRODUCT[code][5] < 100 else g.pick([20, 50, 100]),
                     "target_price": target, "required_by": iso(opened + dt.timedelta(days=7)),
                     "customer": cname, "sell_currency": currency, "target_margin": margin,
                     "state": state, "owner": "purchaser",
                     "specification": "CE/RoHS，英文包装和说明书 / CE and RoHS, English packaging and manual"})
        if state == "draft":
            continue
        makers = [s for s in SUPPLIERS if code in s[7]] or SUPPLIERS[:2]
        offers = []
        for s in makers[:3]:
            offers.append((s, round(PRODUCT[code][6] * g.rng.uniform(0.9, 1.1), 2), g.rng.randint(15, 45)))
        best = min(offers, key=lambda o: o[1] + o[2] * 0.2)  # price, then lead time
        for s, price, lead in offers:
            quote_no += 1
            quoted = opened + dt.timedelta(days=g.rng.randint(1, 5))
            qstate = "received" if state in ("inquiring", "cancelled") else ("awarded" if s is best[0] else "declined")
            quotes.append({"rfq": n + 1, "supplier": s[0], "unit_price": price, "moq": g.pick([50, 100, 200, 500]),
                           "lead_time_days": lead, "quoted_on": iso(quoted), "valid_until": iso(quoted + dt.timedelta(days=30)),
                           "state": qstate, "owner": "purchaser"})
            if qstate == "awarded":
                awards.append((code, quoted, price))
                fx = costing_rate(currency, quoted)
                prices.append({"product": PRODUCT[code][0], "customer": cname, "currency": currency,
                               "price": round(price * (1 + margin / 100) / fx, 2), "cost_price": price,
                               "valid_from": iso(quoted), "source": "rfq_award", "supplier_quote": quote_no,
                               "note": f"询价定标 / RFQ {n + 1}", "owner": "purchaser"})
    add("08_rfqs.yaml", "rfq", rfqs, "RFQs: inquiries for one product sent to several suppliers.")
    add("09_supplier_quotes.yaml", "supplier_quote", quotes, "Supplier quotes: compared per RFQ, one awarded.")
    # the export price list: every product in every currency, for any customer
    for code in PRODUCT:
        for currency in ("USD", "EUR", "CNY"):
            prices.append({"product": PRODUCT[code][0], "currency": currency, "price": list_price(code, currency),
                           "cost_price": PRODUCT[code][6], "valid_from": iso(MONTHS[0]), "source": "price_list",
                           "note": "出口价目表 / Export price list", "owner": "sales_manager"})
    # prices agreed in negotiation with key accounts
    for cname in [c[0] for c in CUSTOMERS if c[3] == "a"]:
        currency = currency_of(cust[cname][1])
        for code in g.rng.sample([p[1] for p in PRODUCTS if p[3] == "finished"], 3):
            prices.append({"product": PRODUCT[code][0], "customer": cname, "currency": currency,
                           "price": round(list_price(code, currency) * g.rng.uniform(0.9, 0.96), 2),
                           "cost_price": PRODUCT[code][6], "valid_from": iso(g.days_ago(60, 300)),
                           "source": "negotiated", "note": "年度框架价 / Annual agreed price", "owner": owner_of[cname]})

    def price_for(code, cname, currency, day):
        fitting = [p for p in prices if p["product"] == PRODUCT[code][0] and p["currency"] == currency
                   and p["valid_from"] <= iso(day) and p.get("customer") in (None, cname)]
        return max(fitting, key=lambda p: (p.get("customer") is not None, p["valid_from"]))["price"]

    def cost_for(code, day):
        awarded = [q for q in awards if q[0] == code and q[1] <= day]
        return max(awarded)[2] if awarded else PRODUCT[code][6]

    add("10_sales_prices.yaml", "sales_price", prices, "Selling prices: awarded RFQs plus margin, agreed prices and the export price list.")

    # ---------------------------------------------------------- quotations
    trade_quotes = []
    for n in range(36):
        cname = CUSTOMERS[(n * 5) % len(CUSTOMERS)][0]
        currency = currency_of(cust[cname][1])
        day = g.days_ago(3, 300)
        state = g.weighted([("draft", 2), ("approved", 2), ("sent", 4), ("accepted", 4), ("declined", 2)])
        lines = []
        for code in g.rng.sample([p[1] for p in PRODUCTS if p[3] != "spare_part"], g.rng.randint(1, 3)):
            qty = g.pick([20, 50, 100]) if PRODUCT[code][5] > 100 else g.pick([200, 500, 1000, 2000])
            lines.append({"product": PRODUCT[code][0], "quantity": qty, "unit_price": price_for(code, cname, currency, day),
                          "cost_price": cost_for(code, day)})
        trade_quotes.append({"customer": cname, "quote_date": iso(day), "currency": currency,
                             "valid_until": iso(day + dt.timedelta(days=30)), "incoterm": g.pick(["FOB", "FOB", "CIF", "EXW", "DDP"]),
                             "port": g.pick(["Shenzhen", "Shanghai", "Ningbo"]), "payment_terms": cust[cname][6],
                             "lead_time": g.pick(["25 days", "30-35 days", "45 days"]), "lines": lines,
                             "terms": "价格含标准出口包装 / Prices include standard export packing",
                             "state": state, "owner": owner_of[cname]})
    add("11_quotes.yaml", "quote", trade_quotes, "Quotations in the customer's currency, at the prices the lookups give.")

    # ---------------------------------------------------------- orders and payments
    orders, payments, serials = [], [], []
    serial_seq = 0
    states_weights = [("completed", 12), ("delivered", 3), ("shipped", 2), ("confirmed", 2), ("draft", 1), ("cancelled", 1)]
    n_orders = 130
    for n in range(n_orders):
        c = CUSTOMERS[g.weighted([(i, 5 if c[3] == "a" else (3 if c[3] == "b" else 1)) for i, c in enumerate(CUSTOMERS)])]
        cname, country = c[0], c[1]
        currency = currency_of(country)
        day = g.days_ago(5, 540)
        state = g.weighted(states_weights)
        if day > ANCHOR - dt.timedelta(days=40) and state == "completed":
            state = "delivered"
        lines = []
        codes = g.rng.sample([p[1] for p in PRODUCTS if p[3] != "spare_part"], g.weighted([(1, 5), (2, 3), (3, 1)]))
        serialized_here = 0
        for code in codes:
            serialized = PRODUCT[code][4]
            qty = (g.rng.randint(2, 6) if serialized else g.pick([100, 200, 500, 1000]) if PRODUCT[code][5] < 50 else g.pick([20, 50, 100]))
            if serialized and (n % 7 != 0 or serialized_here):
                continue  # serialised units in every seventh order only (their serial numbers are seeded)
            serialized_here += qty if serialized else 0
            price = round(list_price(code, currency) * g.rng.uniform(0.92, 1.0), 2)
            lines.append({"product": PRODUCT[code][0], "quantity": qty, "unit_price": price,
                          "discount": g.pick([0.0, 0.0, 2.0, 3.0]), "cost_price": cost_for(code, day)})
        if not lines:
            code = "LED-PNL-40"
            lines.append({"product": PRODUCT[code][0], "quantity": 500, "unit_price": list_price(code, currency), "discount": 0.0,
                          "cost_price": cost_for(code, day)})
        total = sum(l["quantity"] * l["unit_price"] * (1 - l["discount"] / 100) for l in lines)
        order_id = ORDER_OFFSET + n + 1
        delivery = day + dt.timedelta(days=g.rng.randint(25, 45))
        orders.append({"customer": cname, "kind": "contract" if total > 50000 else "order",
                       "contract_no": f"EX{day:%y%m}{n + 1:04d}", "order_date": iso(day), "signed_on": iso(day),
                       "delivery_date": iso(delivery), "currency": currency, "incoterm": g.pick(["FOB", "FOB", "CIF", "DDP", "EXW"]),
                       "port_of_loading": g.pick(["Shenzhen", "Shanghai", "Ningbo"]),
                       "port_of_discharge": {"DE": "Hamburg", "US": "Los Angeles", "GB": "Felixstowe", "NL": "Rotterdam",
                                             "AE": "Jebel Ali", "AU": "Sydney", "JP": "Yokohama", "BR": "Santos"}.get(country, "—"),
                       "payment_terms": c[6], "shipping_address": f"{cname}, {country}", "lines": lines,
                       "state": state, "owner": owner_of[cname]})
        if state in ("completed", "delivered", "shipped", "confirmed"):
            ship_day = min(delivery, ANCHOR)
            if state == "completed":
                shares = [0.3, 0.7] if c[6] == "tt_30_70" else [1.0]
            elif state == "delivered":
                shares = [0.3] if c[6] in ("tt_30_70", "tt_advance") else []
            elif c[6] == "tt_advance":
                shares = [1.0]
            else:
                shares = [0.3] if c[6] == "tt_30_70" else []
            for k, share in enumerate(shares):
                paid_on = min(day + dt.timedelta(days=3 if k == 0 and len(shares) > 1 else g.rng.randint(30, 70)), ANCHOR)
                payments.append({"customer": cname, "order": order_id, "currency": currency,
                                 "amount": round(total * share, 2), "paid_on": iso(paid_on),
                                 "method": "bank_transfer", "reference_no": f"TT{paid_on:%Y%m%d}{n:03d}{k}",
                                 "owner": owner_of[cname]})
            if state != "confirmed":
                for line in lines:
                    code = next(p[1] for p in PRODUCTS if p[0] == line["product"])
                    if not PRODUCT[code][4]:
                        continue
                    for _ in range(line["quantity"]):
                        serial_seq += 1
                        serials.append({"serial_no": f"{code.replace('-', '')}-{day:%y%m}-{serial_seq:05d}",
                                        "product": line["product"], "order": order_id, "customer": cname,
                                        "status": "sold", "shipped_on": iso(ship_day),
                                        "firmware": g.pick(["V2.1.3", "V2.2.0", "V3.0.1"])})
    # a C-rated customer's order waits for the credit decision
    orders.append({"customer": "Lagos Bright Energy Ltd.", "kind": "order", "contract_no": "EX-HOLD-0001",
                   "order_date": iso(ANCHOR - dt.timedelta(days=3)), "currency": "USD", "incoterm": "CIF",
                   "port_of_loading": "Shenzhen", "port_of_discharge": "Lagos (Apapa)", "payment_terms": "tt_advance",
                   "lines": [{"product": PRODUCT["LED-ST-100"][0], "quantity": 300, "unit_price": 56.0, "discount": 0.0,
                              "cost_price": cost_for("LED-ST-100", ANCHOR)}],
                   "state": "credit_hold", "owner": "sales_rep"})
    add("12_orders.yaml", "order", orders, "Export orders over eighteen months, in USD, EUR and CNY.")
    add("13_payments.yaml", "payment", payments, "Payments received in the orders' currencies (deposits and balances).")
    add("14_serial_numbers.yaml", "serial_number", serials, "Serial numbers of the serialised units shipped.")

    # ---------------------------------------------------------- samples and spares
    samples = []
    for n in range(36):
        cname = CUSTOMERS[(n * 3) % len(CUSTOMERS)][0]
        code = g.pick([p[1] for p in PRODUCTS if p[3] == "finished"])
        day = g.days_ago(5, 200)
        state = g.weighted([("draft", 1), ("pending_approval", 2), ("approved", 2), ("shipped", 4), ("delivered", 3),
                            ("closed", 6), ("rejected", 1), ("cancelled", 1)])
        value = round(PRODUCT[code][6] * g.rng.randint(1, 3), 2)
        record = {"customer": cname, "product": PRODUCT[code][0], "quantity": g.rng.randint(1, 3),
                  "purpose": g.pick(["evaluation", "evaluation", "certification", "pre_production", "exhibition"]),
                  "free_of_charge": n % 4 != 0, "sample_value": value,
                  "freight_paid_by": g.pick(["us", "customer_account"]), "ship_to": f"{cname}, {cust[cname][1]}",
                  "state": state, "owner": owner_of[cname]}
        if state in ("shipped", "delivered", "closed"):
            courier = g.pick(["dhl", "fedex", "ups", "sf"])
            shipped = day + dt.timedelta(days=3)
            record.update({"courier": courier, "tracking_no": f"{g.rng.randint(10 ** 9, 10 ** 10 - 1)}",
                           "shipped_on": iso(shipped), "follow_up_on": iso(shipped + dt.timedelta(days=10))})
            if state in ("delivered", "closed"):
                record["delivered_on"] = iso(shipped + dt.timedelta(days=g.rng.randint(3, 8)))
            if state == "closed":
                record["test_result"] = g.weighted([("approved", 5), ("approved_with_changes", 2), ("rejected", 2)])
                record["feedback"] = g.pick(["性能满足要求，准备下试单 / Performance fine, trial order coming",
                                             "需要更改包装和标签 / Packaging and label need changes",
                                             "亮度未达到要求 / Brightness below requirement",
                                             "认证测试通过 / Passed certification tests"])
        samples.append(record)
    add("15_sample_requests.yaml", "sample_request", samples, "Samples requested, approved, shipped, delivered and followed up.")

    spares = []
    sold = [s for s in serials]
    for n in range(16):
        kind = "spare_part" if n % 3 else "spare_unit"
        if kind == "spare_part":
            code = g.pick(["SP-INV5-CB", "SP-INV-FAN", "SP-PPS-BM"])
        else:
            code = g.pick(["INV-5K", "PPS-1000", "SH-GW"])
        fits = PRODUCT[code][9] or code
        faulty = next((s for s in sold[n * 3:] if s["product"] == PRODUCT[fits][0]), None)
        reason = "warranty" if faulty else g.pick(["consignment", "paid"])
        cname = faulty["customer"] if faulty else CUSTOMERS[n % len(CUSTOMERS)][0]
        state = g.weighted([("requested", 2), ("approved", 2), ("shipped", 3), ("closed", 4), ("rejected", 1)])
        record = {"kind": kind, "customer": cname, "product": PRODUCT[code][0], "quantity": 1 if kind == "spare_unit" else g.rng.randint(1, 5),
                  "reason": reason, "faulty_serial": faulty["serial_no"] if faulty else None,
                  "state": state, "owner": "merchandiser",
                  "notes": "客户报修，远程诊断后更换 / Reported by the customer, replaced after remote diagnosis" if faulty else "客户备用库存 / Stock at the customer"}
        if state in ("shipped", "closed"):
            record.update({"courier": "DHL", "tracking_no": f"{g.rng.randint(10 ** 9, 10 ** 10 - 1)}",
                           "shipped_on": iso(g.days_ago(5, 120))})
        spares.append(record)
    add("16_spare_issues.yaml", "spare_issue", spares, "Spare units and parts: warranty replacements, consignment and sold.")

    for name, entity, records, header in files:
        write_seed(OUT, name, entity, records, header)
    write_market_rates()
    write_mailbox(contacts, opportunities)
    print(f"wrote {sum(len(f[2]) for f in files)} records in {len(files)} files to {OUT}")


# ------------------------------------------------------------------ the sample mailbox

OURS = "BrightSun Export <sales@brightsun-export.example>"
SPEC_SHEET = ("BrightSun INV-5K grid-tie inverter\nRated power 5000 W, MPPT 2, IP65, efficiency 97.6 %\n"
              "Certificates: CE, VDE-AR-N 4105, IEC 62109\n")


def msgid(key: str, domain: str) -> str:
    """A Message-ID that is the same on every run (make_msgid's has the time in it)."""
    return f"<{key}.{ANCHOR:%Y%m%d}@{domain}>"


def write_mailbox(contacts: list[dict], opportunities: list[dict]) -> None:
    """seed/mailbox/sample.mbox: threads with customers' contacts and suppliers, some with a
    spec sheet attached, some naming an opportunity in the subject ([opportunity#id])."""
    folder = OUT / "mailbox"
    folder.mkdir(parents=True, exist_ok=True)
    opportunity_offset = standard_count("08_opportunities.yaml")
    messages: list[EmailMessage] = []
    when = dt.datetime.combine(ANCHOR - dt.timedelta(days=40), dt.time(8, 30), dt.timezone.utc)
    topics = [("Inquiry: {p}", "询盘：{p}",
               "Dear BrightSun team,\n\nWe are interested in your {p}. Please quote 200 pcs FOB Shenzhen "
               "with your best lead time and payment terms.\n\nBest regards,\n{n}"),
              ("Sample request: {p}", "样品申请：{p}",
               "Hello,\n\nBefore ordering we would like to test two samples of the {p}. Can you send them "
               "by DHL on our account?\n\nThanks,\n{n}"),
              ("Payment advice", "付款通知",
               "Dear Sirs,\n\nPlease find attached the remittance advice for the deposit of our last order.\n\n{n}")]
    our_replies = ["您好 / Dear {n},\n\nThank you for your message. Our quotation follows within 24 hours.\n\n"
                   "Best regards,\nBrightSun Export 外贸部",
                   "Dear {n},\n\nThe samples leave tomorrow by DHL; we will send the tracking number.\n\n"
                   "Best regards,\nBrightSun Export"]
    chosen = contacts[::5][:12]
    for k, contact in enumerate(chosen):
        topic_en, topic_zh, body = topics[k % len(topics)]
        product = g.pick([p for p in PRODUCTS if p[3] == "finished"])[0].split(" / ")[1]
        subject = topic_en.format(p=product)
        # the customer's own opportunity, when it has one: the subject names it
        mine = [i for i, o in enumerate(opportunities) if o["customer"] == contact["customer"]]
        if mine and k % 2 == 0:
            subject += f" [opportunity#{opportunity_offset + mine[0] + 1}]"
        first = EmailMessage()
        first["From"] = f"{contact['name']} <{contact['email']}>"
        first["To"] = OURS
        first["Subject"] = subject
        first["Date"] = format_datetime(when)
        first["Message-ID"] = msgid(f"ft{k}a", contact["email"].split("@")[1])
        first.set_content(body.format(p=product, n=contact["name"]))
        if k % 3 == 0:
            first.add_attachment(SPEC_SHEET.encode(), maintype="text", subtype="plain", filename="requirements.txt")
        messages.append(first)
        when += dt.timedelta(hours=5)
        reply = EmailMessage()
        reply["From"] = OURS
        reply["To"] = f"{contact['name']} <{contact['email']}>"
        reply["Subject"] = "Re: " + subject
        reply["Date"] = format_datetime(when)
        reply["Message-ID"] = msgid(f"ft{k}b", "brightsun-export.example")
        reply["In-Reply-To"] = first["Message-ID"]
        reply["References"] = first["Message-ID"]
        reply.set_content(our_replies[k % 2].format(n=contact["name"]))
        if k % 4 == 1:
            reply.add_attachment(SPEC_SHEET.encode(), maintype="text", subtype="plain", filename="INV-5K-datasheet.txt")
        messages.append(reply)
        when += dt.timedelta(hours=19)
    for k, (name, _, _, _, _, contact, email, codes) in enumerate(SUPPLIERS[:6]):
        product = PRODUCT[codes[0]][0]
        ask = EmailMessage()
        ask["From"] = OURS
        ask["To"] = f"{contact} <{email}>"
        ask["Subject"] = f"询价 / RFQ: {product}"
        ask["Date"] = format_datetime(when)
        ask["Message-ID"] = msgid(f"fts{k}a", "brightsun-export.example")
        ask.set_content(f"{contact}您好：\n\n请报{product} 500台含税价、交期和起订量。\n"
                        f"Please quote 500 pcs including VAT, lead time and MOQ.\n\n谢谢 / Thanks")
        messages.append(ask)
        when += dt.timedelta(hours=6)
        answer = EmailMessage()
        answer["From"] = f"{contact} <{email}>"
        answer["To"] = OURS
        answer["Subject"] = f"回复 / Re: 询价 / RFQ: {product}"
        answer["Date"] = format_datetime(when)
        answer["Message-ID"] = msgid(f"fts{k}b", email.split("@")[1])
        answer["In-Reply-To"] = ask["Message-ID"]
        answer["References"] = ask["Message-ID"]
        answer.set_content(f"您好：\n\n{product} 含税单价 {PRODUCT[codes[0]][6]:.2f} 元，交期25天，起订量100台。\n\n{name}")
        messages.append(answer)
        when += dt.timedelta(hours=18)
    with (folder / "sample.mbox").open("wb") as out:
        for index, message in enumerate(messages):
            if message.is_multipart():
                message.set_boundary(f"==brightsun-{index:03d}==")  # the default one is random
            out.write(f"From MAILER-DAEMON {when:%a %b %d %H:%M:%S %Y}\n".encode())
            data = message.as_bytes(unixfrom=False).replace(b"\r\n", b"\n")
            # mbox quoting: a body line starting with "From " would start a new message
            data = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in data.split(b"\n"))
            out.write(data.rstrip(b"\n") + b"\n\n")


if __name__ == "__main__":
    main()
