"""Measures over related records and the analytic report kinds (rfm, purchase_cycle, basket,
funnel, forecast), on known data with exact expected numbers worked out by hand below."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BARE_ROOT, FIXTURES, World
from engine.errors import Forbidden
from engine.records.analytics.forecast import project
from engine.records.access import SYSTEM
from engine.records.reports import run_report

SITE = FIXTURES / "sites" / "analytics"
REPO = Path(__file__).resolve().parents[1]
TODAY = dt.datetime.now(dt.timezone.utc).date()


@pytest.fixture
def world(database_url):
    w = World(database_url, site=SITE, root=BARE_ROOT)
    yield w
    w.engine.dispose()


def rows(world, caller, report, params=None):
    return run_report(world.service, caller, report, params)["rows"]


# ---------------------------------------------------------------- measures over related records

@pytest.fixture
def campaigns(world):
    """Three campaigns; payments and expense claims by two reps (each reads only their own)."""
    admin = world.user("boss", "admin")
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    create = world.service.create
    k1 = create(admin, "campaign", {"name": "K1", "channel": "email"})["id"]
    k2 = create(admin, "campaign", {"name": "K2", "channel": "email"})["id"]
    k3 = create(admin, "campaign", {"name": "K3", "channel": "event"})["id"]
    for who, campaign, amount, status in [
            (rep1, k1, "100", "paid"), (rep1, k1, "200", "paid"), (rep2, k1, "300", "paid"),
            (rep2, k1, "1000", "pending"), (rep2, k2, "50", "paid"), (rep1, None, "999", "paid")]:
        create(who, "payment", {"campaign": campaign, "amount": amount, "status": status,
                                "paid_on": TODAY.isoformat()})
    for who, campaign, amount, status in [
            (rep1, k1, "150", "approved"), (rep2, k1, "50", "approved"),
            (rep1, k1, "500", "rejected"), (rep2, k3, "80", "approved")]:
        create(who, "expense_claim", {"campaign": campaign, "amount": amount, "status": status})
    return admin, rep1, rep2, (k1, k2, k3)


def test_measures_over_related_records_and_division_by_zero(world, campaigns):
    admin, _, _, (k1, k2, k3) = campaigns
    result = run_report(world.service, admin, "campaign_roi")
    assert [c["name"] for c in result["columns"]] == [
        "id", "revenue", "payments", "average_payment", "cost", "net", "roi"]
    # K1: paid 100 + 200 + 300 = 600 (the pending 1000 left out), 3 payments, average 200;
    #     approved claims 150 + 50 = 200 (the rejected 500 left out); net 400; roi 400/200 = 2
    # K2: paid 50; no claims: cost 0, and roi's "cost == 0 ? null" gives no value
    # K3: no payments: revenue 0 (a sum of nothing), average none; cost 80; roi -80/80 = -1
    # The 999 payment refers to no campaign and counts nowhere.
    assert result["rows"] == [
        [k1, 600.0, 3, 200.0, 200.0, 400.0, 2.0],
        [k2, 50.0, 1, 50.0, 0, 50.0, None],
        [k3, 0, 0, None, 80.0, -80.0, -1.0],
    ]


def test_related_measures_sum_over_every_record_of_a_group(world, campaigns):
    admin = campaigns[0]
    # email = K1 + K2: 2 campaigns (the joined payments do not multiply them), revenue 650
    # from 4 paid payments, average 650 / 4 = 162.5, biggest 1000 (no where: the pending one),
    # per campaign 650 / 2 = 325; event = K3: nothing paid, per campaign 0 / 1 = 0
    assert rows(world, admin, "revenue_by_channel") == [
        ["email", 2, 650.0, 4, 162.5, 1000.0, 325.0],
        ["event", 1, 0, 0, None, None, 0.0],
    ]


def test_a_rep_counts_only_the_related_records_they_may_read(world, campaigns):
    _, rep1, rep2, (k1, k2, k3) = campaigns
    # rep1 reads every campaign but only their own payments (100, 200) and claims (150)
    # K1: revenue 300, cost 150, net 150, roi 150/150 = 1; K2 and K3: nothing of rep1's
    assert rows(world, rep1, "campaign_roi") == [
        [k1, 300.0, 2, 150.0, 150.0, 150.0, 1.0],
        [k2, 0, 0, None, 0, 0.0, None],
        [k3, 0, 0, None, 0, 0.0, None],
    ]
    # rep2: K1 paid 300, claim 50 -> roi 250/50 = 5; K2 paid 50; K3 claim 80 -> roi -1
    assert rows(world, rep2, "campaign_roi") == [
        [k1, 300.0, 1, 300.0, 50.0, 250.0, 5.0],
        [k2, 50.0, 1, 50.0, 0, 50.0, None],
        [k3, 0, 0, None, 80.0, -80.0, -1.0],
    ]


def test_report_over_a_related_field_the_viewer_may_not_read_is_refused(world, campaigns):
    auditor = world.user("audit", "auditor")  # payment.amount is hidden from auditors
    with pytest.raises(Forbidden, match="payment.amount"):
        run_report(world.service, auditor, "campaign_roi")
    with pytest.raises(Forbidden, match="amount"):
        run_report(world.service, auditor, "payments_forecast")


# ---------------------------------------------------------------- rfm and purchase_cycle

def _order(world, who, customer, days_ago, *prices, product=None):
    lines = [{"product": product, "quantity": 1, "unit_price": price} for price in prices]
    return world.service.create(who, "order", {
        "customer": customer, "order_date": (TODAY - dt.timedelta(days=days_ago)).isoformat(),
        "lines": lines})


@pytest.fixture
def customers(world):
    """Five customers and their orders; rep1 owns C1 and C3 (and their orders), rep2 the rest.

    customer  orders: days ago (total)                     recency  frequency  monetary
    C1        2 (100), 10 (200), 21 (300)                   2        3          600
    C2        5 (1000)                                      5        1          1000
    C3        30 (50), 50 (50)                              30       2          100
    C4        100 (20); 1 (9999) cancelled: left out        100      1          20
    C5        3 (400), 40 (50), 40 (50), 70 (100), 90 (200)  3        5          800
    """
    admin = world.user("boss", "admin")
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    product = world.service.create(admin, "product", {"name": "P"})["id"]
    owners = {"C1": rep1, "C2": rep2, "C3": rep1, "C4": rep2, "C5": rep2}
    ids = {name: world.service.create(who, "customer", {"name": name})["id"]
           for name, who in owners.items()}
    plan = {"C1": [(2, 100), (10, 200), (21, 300)], "C2": [(5, 1000)],
            "C3": [(30, 50), (50, 50)], "C4": [(100, 20), (1, 9999)],
            "C5": [(3, 400), (40, 50), (40, 50), (70, 100), (90, 200)]}
    for name, orders in plan.items():
        for days_ago, total in orders:
            order = _order(world, owners[name], ids[name], days_ago, str(total),
                           product=product)
            if total == 9999:
                world.service.transition(admin, "order", order["id"], "cancel")
    return admin, rep1, ids


def test_rfm_scores_and_segments(world, customers):
    admin, _, c = customers
    result = run_report(world.service, admin, "customer_rfm")
    assert [col["name"] for col in result["columns"]] == [
        "customer", "last_purchase", "recency_days", "frequency", "monetary", "r_score",
        "f_score", "m_score", "rfm", "segment", "segment_label"]
    assert result["columns"][0]["to"] == "customer"
    # 5 customers: score = 1 + 5 * (rank - 1) // 5 = rank, ties sharing the lower rank.
    # R (the longest ago ranks first): C4 100, C3 30, C2 5, C5 3, C1 2   -> 1, 2, 3, 4, 5
    # F: C2 1 and C4 1 (rank 1 both), C3 2, C1 3, C5 5                 -> 1, 1, 3, 4, 5
    # M: C4 20, C3 100, C1 600, C5 800, C2 1000                          -> 1, 2, 3, 4, 5
    # FM = (F + M + 1) // 2: C1 4, C2 3, C3 3, C4 1, C5 5; segment grid (R, FM):
    # C1 (5, 4) champions, C5 (4, 5) loyal, C2 (3, 3) need attention, C3 (2, 3) at risk,
    # C4 (1, 1) lost. Sorted by rfm, highest first.
    day = lambda n: (TODAY - dt.timedelta(days=n)).isoformat()  # noqa: E731
    assert result["rows"] == [
        [c["C1"], day(2), 2, 3, 600.0, 5, 4, 3, "543", "champions", "Champions"],
        [c["C5"], day(3), 3, 5, 800.0, 4, 5, 4, "454", "loyal", "Loyal"],
        [c["C2"], day(5), 5, 1, 1000.0, 3, 1, 5, "315", "need_attention", "Need attention"],
        [c["C3"], day(30), 30, 2, 100.0, 2, 3, 2, "232", "at_risk", "At risk"],
        [c["C4"], day(100), 100, 1, 20.0, 1, 1, 1, "111", "lost", "Lost"],
    ]


def test_rfm_for_a_rep_scores_only_their_orders_and_speaks_chinese(world, customers):
    _, rep1, c = customers
    rep1_zh = world.user("rep1", "rep", locale="zh")
    # rep1 reads C1's and C3's orders only: 2 customers, score = 1 + 5 * (rank - 1) // 2,
    # so rank 1 -> 1 and rank 2 -> 3. C1 is better on R (2 < 30 days), F (3 > 2), M (600 > 100):
    # C1 333, FM 3 -> need attention; C3 111 -> lost.
    result = run_report(world.service, rep1_zh, "customer_rfm")
    assert [r[:1] + r[2:] for r in result["rows"]] == [
        [c["C1"], 2, 3, 600.0, 3, 3, 3, "333", "need_attention", "需要关注"],
        [c["C3"], 30, 2, 100.0, 1, 1, 1, "111", "lost", "已流失"],
    ]
    assert result["columns"][2]["label"] == "距上次购买天数"


def test_related_lines_follow_their_parents_permissions(world, customers):
    admin, rep1, _ = customers
    product = world.service.list(admin, "product").data[0]["id"]
    # every order has one line of P, quantity 1, at the order's total: 13 lines of
    # 600 + 1000 + 100 + (20 + 9999, the cancelled one too: no where) + 800 = 12519
    assert rows(world, admin, "product_sales") == [[product, 13, 12519.0, 13]]
    # rep1 reads only C1's and C3's orders, so only their lines: 3 + 2, 600 + 100
    assert rows(world, rep1, "product_sales") == [[product, 5, 700.0, 5]]


def test_purchase_cycle_average_next_and_overdue(world, customers):
    admin, _, c = customers
    day = lambda n: (TODAY + dt.timedelta(days=n)).isoformat()  # noqa: E731
    # C1: days -21, -10, -2: 19 days over 2 gaps = 9.5, rounded 10 -> next day +8, not due
    # C3: days -50, -30: 20 -> next day -10: 10 days overdue
    # C5: days -90, -70, -40 (twice: one day), -3: 87 over 3 gaps = 29 -> next +26
    # C2 and C4: one purchase day, no cycle (empty values sort last)
    assert rows(world, admin, "reorder_cycle") == [
        [c["C3"], 2, day(-50), day(-30), 20.0, day(-10), 10],
        [c["C1"], 3, day(-21), day(-2), 9.5, day(8), 0],
        [c["C5"], 4, day(-90), day(-3), 29.0, day(26), 0],
        [c["C2"], 1, day(-5), day(-5), None, None, None],
        [c["C4"], 1, day(-100), day(-100), None, None, None],
    ]


# ---------------------------------------------------------------- basket

def test_products_bought_together(world):
    admin = world.user("boss", "admin")
    customer = world.service.create(admin, "customer", {"name": "C"})["id"]
    p = {name: world.service.create(admin, "product", {"name": name})["id"] for name in "ABC"}

    def order(*names):
        lines = [{"product": p[n], "unit_price": "1"} for n in names]
        return world.service.create(admin, "order", {"customer": customer, "lines": lines,
                                                     "order_date": TODAY.isoformat()})
    order("A", "B")
    order("A", "B", "C")
    order("A", "C")
    order("B")
    order("A", "A", "B")  # A twice: one item of the basket
    order()  # no lines: not a basket
    cancelled = order("B", "C")
    world.service.transition(admin, "order", cancelled["id"], "cancel")  # left out by where
    # 5 baskets; A in 4, B in 4, C in 2; A+B in 3, A+C in 2, B+C in 1.
    # min_support 0.4 = 2 of 5 baskets: A+B and A+C stay (A+C exactly on it), B+C goes.
    # A->B: support 3/5, confidence 3/4, lift 0.75 / (4/5) = 0.9375; B->A the same
    # C->A: support 2/5, confidence 2/2, lift 1 / (4/5) = 1.25; A->C: 2/4, lift 0.5 / (2/5)
    result = run_report(world.service, admin, "bought_together")
    assert [c["name"] for c in result["columns"]] == [
        "product", "also_bought", "baskets", "support", "confidence", "lift"]
    assert result["rows"] == [
        [p["A"], p["B"], 3, 0.6, 0.75, 0.9375],
        [p["B"], p["A"], 3, 0.6, 0.75, 0.9375],
        [p["C"], p["A"], 2, 0.4, 1.0, 1.25],
        [p["A"], p["C"], 2, 0.4, 0.5, 1.25],
    ]


# ---------------------------------------------------------------- funnel

def test_funnel_counts_conversion_and_days_in_each_state(world):
    admin = world.user("boss", "admin")
    customer = world.service.create(admin, "customer", {"name": "C"})["id"]
    start = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
    # record: the transitions it went through, days after its creation
    plan = {"R1": [("confirm", 2), ("ship", 5), ("deliver", 6)],
            "R2": [("confirm", 4), ("cancel", 5)],
            "R3": [],
            "R4": [("confirm", 1)]}
    orders, audit = world.service.schema.entities["order"], world.service.audit
    for name, steps in plan.items():
        record = world.service.create(admin, "order", {"customer": customer,
                                                       "order_date": "2024-03-01"})
        for transition, _ in steps:
            world.service.transition(admin, "order", record["id"], transition)
        # the history happened over days, not within this test's second: date it back
        with world.engine.begin() as conn:
            conn.execute(orders.update().where(orders.c.id == record["id"])
                         .values(created_at=start))
            for transition, days in steps:
                conn.execute(audit.update().where(
                    audit.c.entity == "order", audit.c.record_id == record["id"],
                    audit.c.action == f"transition:{transition}")
                    .values(at=start + dt.timedelta(days=days)))
    # reached: draft 4 (creation), confirmed 3 (R1 R2 R4), shipped 1, delivered 1
    # now: draft R3, confirmed R4, shipped none, delivered R1 (R2 is cancelled, not a step)
    # conversion: 3/4, 1/3, 1/1
    # days: draft R1 2, R2 4, R4 1 -> 7/3 (R3 still there: not counted); confirmed R1 5-2,
    # R2 5-4 -> 2 (R4 still there); shipped R1 6-5 = 1; delivered is final: no stay ends
    result = run_report(world.service, admin, "order_funnel")
    assert [c["name"] for c in result["columns"]] == [
        "state", "records", "reached", "conversion", "average_days"]
    assert result["rows"] == [
        ["draft", 1, 4, None, 2.333333],
        ["confirmed", 1, 3, 0.75, 2.0],
        ["shipped", 0, 1, 0.333333, 1.0],
        ["delivered", 1, 1, 1.0, None],
    ]
    # an imported order that starts out shipped (no transition yet) entered "shipped" at
    # its creation; one that moved on since entered the state its first transition left
    imported = world.service.create(SYSTEM, "order", {
        "customer": customer, "order_date": "2024-03-01", "state": "shipped"},
        allow_state=True)
    moved_on = world.service.create(SYSTEM, "order", {
        "customer": customer, "order_date": "2024-03-01", "state": "shipped"},
        allow_state=True)
    world.service.transition(admin, "order", moved_on["id"], "deliver")
    rows = {row[0]: row[:3] for row in run_report(world.service, admin, "order_funnel")["rows"]}
    assert rows["shipped"] == ["shipped", 1, 3] and rows["delivered"] == ["delivered", 2, 2]
    assert imported["state"] == "shipped"


# ---------------------------------------------------------------- forecast

def _month(offset: int) -> tuple[str, str]:
    """(YYYY-MM, an ISO day in it) for the month `offset` months from this one."""
    index = TODAY.year * 12 + TODAY.month - 1 + offset
    year, month = divmod(index, 12)
    return f"{year:04d}-{month + 1:02d}", dt.date(year, month + 1, 15).isoformat()


def _pay(world, who, offset, amount, status="paid"):
    world.service.create(who, "payment", {"paid_on": _month(offset)[1], "amount": amount,
                                          "status": status})


def test_forecast_follows_the_linear_trend(world):
    admin = world.user("boss", "admin")
    for offset, amount in [(-3, "100"), (-2, "150"), (-2, "50"), (-1, "300"), (0, "50")]:
        _pay(world, admin, offset, amount)
    _pay(world, admin, -1, "5000", status="pending")  # left out by where
    # history 100, 200, 300: a line rising 100 a month -> 400, 500, 600 for this month and
    # the next two (under 24 months: no seasonal index); this month's 50 so far is its actual
    m = [_month(k)[0] for k in range(-3, 3)]
    assert rows(world, admin, "payments_forecast") == [
        [m[0], 100.0, None], [m[1], 200.0, None], [m[2], 300.0, None],
        [m[3], 50.0, 400.0], [m[4], None, 500.0], [m[5], None, 600.0],
    ]


def test_forecast_with_24_months_uses_a_seasonal_index(world):
    admin = world.user("boss", "admin")
    for offset in range(-24, 0):
        _pay(world, admin, offset, "200" if offset in (-24, -12) else "100")
    # 24 months: this calendar month (offsets -24, -12) averages 200, the others 100; all
    # months average 2600 / 24, so its index is 200 / (2600 / 24) = 1.846 and the others'
    # 0.923. Divided by them, the last 12 months are all 2600 / 24: a flat line. This month
    # is then 2600 / 24 * 1.846 = 200, the next ones 2600 / 24 * 0.923 = 100.
    forecast = rows(world, admin, "payments_forecast")
    assert len(forecast) == 24 + 3
    assert forecast[0] == [_month(-24)[0], 200.0, None]
    assert [r[2] for r in forecast[-3:]] == [200.0, 100.0, 100.0]
    assert forecast[-3][1] == 0  # nothing paid this month yet


def test_forecast_never_goes_below_zero_and_needs_history():
    # 300, 200, 100 falls 100 a month: this month 0, then -100, shown as 0
    assert project([300.0, 200.0, 100.0], 100, 103, 2) == [0.0, 0.0]
    assert project([80.0], 100, 101, 2) == [80.0, 80.0]  # one month: flat
    assert project([], 100, 100, 2) == [None, None]


# ---------------------------------------------------------------- same answer everywhere

def test_analytic_report_over_the_api_with_filters(world, customers):
    from web import create_app
    _, _, c = customers
    world.users.create("api_boss", "pw", ["admin"])
    client = create_app(world.registry, world.engine).test_client()
    token = client.post("/api/v1/auth/token", json={"username": "api_boss", "password": "pw"}
                        ).json["token"]
    response = client.get(f"/api/v1/reports/customer_rfm?customer={c['C3']}",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    # one customer alone: every rank is 1, so every score is 1
    assert response.json["rows"] == [
        [c["C3"], (TODAY - dt.timedelta(days=30)).isoformat(), 30, 2, 100.0, 1, 1, 1, "111",
         "lost", "Lost"]]


def test_crm_report_prints_an_analytic_report_as_csv(world, customers, database_url):
    env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(SITE),
               CRM_DATABASE_URL=database_url)
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "report", "reorder_cycle",
                             "--format", "csv"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("customer,purchases,first_purchase,last_purchase,average_days,"
                        "next_purchase,days_overdue")
    assert lines[1].split(",")[-1] == "10" and len(lines) == 6
