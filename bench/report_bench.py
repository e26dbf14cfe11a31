"""Benchmark: reports in the database at scale.

1. A group-by report (count, sum, average, a filtered count and an expression measure per
   stage) over 1M opportunities, as an admin (every row) and as a rep (`read: own`).
2. An `rfm` report over 100k customers with 1M orders (one row per customer in the answer).

Measured through `run_report` (permissions, SQL, Python arithmetic, JSON values). Run by hand:

    python bench/report_bench.py [--opportunities 1000000] [--customers 100000]
                                 [--orders 1000000] [--covering-index] [--postgres URL]

`--covering-index` declares `indexes: [[stage, amount]]` on opportunities, as a consultant
would for a report that must stay fast on millions of records (see docs/reports.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
from engine.records.access import Caller  # noqa: E402
from engine.records.reports import run_report  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.storage.database import connect  # noqa: E402
from engine.storage.driver import write_rows  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

FILES = {
    "entities/customer.yaml": "entity: customer\nfields:\n  name: {type: string, required: true}\n"
                              "  grade: {type: enum, options: [a, b, c]}\n",
    "entities/opportunity.yaml": "entity: opportunity\nfields:\n"
                                 "  name: {type: string, required: true}\n"
                                 "  customer: {type: reference, to: customer}\n"
                                 "  amount: {type: money}\n"
                                 "  stage: {type: enum, options: [new, qualified, proposal, "
                                 "won, lost]}\n  close_date: {type: date}\n",
    "entities/order.yaml": "entity: order\nfields:\n"
                           "  customer: {type: reference, to: customer, required: true}\n"
                           "  order_date: {type: date, required: true}\n"
                           "  total: {type: money}\n",
    "reports/pipeline.yaml": "report: pipeline\nentity: opportunity\ngroup_by: [stage]\n"
                             "measures:\n  deals: {agg: count}\n"
                             "  value: {agg: sum, field: amount}\n"
                             "  average: {agg: avg, field: amount}\n"
                             "  big: {agg: count, where: \"amount > 500000.0\"}\n"
                             "  big_share: {expr: \"deals == 0 ? 0.0 : double(big) / "
                             "double(deals)\", format: percent}\nsort: -value\n",
    "reports/rfm.yaml": "report: rfm\nkind: rfm\nentity: order\ncustomer: customer\n"
                        "date: order_date\namount: total\n",
    "roles.yaml": "roles:\n  rep:\n    entities:\n      opportunity: {read: own}\n"
                  "      order: {read: own}\n",
}
USERS = 20  # owners the rows are spread over; the rep is user 1


def build(url: str, folder: Path, opportunities: int, customers: int, orders: int,
          covering_index: bool = False):
    site = folder / "site"
    files = dict(FILES)
    if covering_index:
        files["entities/opportunity.yaml"] += "indexes:\n  - [stage, amount]\n"
    for name, text in {"app.yaml": "app: reportbench\n", **files}.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    registry = engine.load_registry(site=site, root=REPO / "tests" / "fixtures" / "bare_root")
    db = connect(url)
    migrate(db, registry)
    service = RecordService(registry, db)
    stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    users = service.schema.engine["user"]
    with db.begin() as conn:
        conn.execute(users.insert(), [{"id": i, "username": f"u{i}", "display_name": f"U{i}",
                                       "password_hash": "-", "active": True,
                                       "created_at": stamp} for i in range(1, USERS + 1)])
    rnd = random.Random(1)
    system = {"version": 1, "created_at": stamp, "updated_at": stamp}
    with db.begin() as conn:
        write_rows(conn, service.schema.entities["customer"],
                   [{"id": i, "name": f"客户 {i}", "grade": "abc"[i % 3], "owner": i % USERS + 1,
                     **system} for i in range(1, customers + 1)])
    stages = ["new", "qualified", "proposal", "won", "lost"]
    today = dt.datetime.now(dt.timezone.utc).date()
    for start in range(0, max(opportunities, orders), 100_000):
        with db.begin() as conn:
            chunk = range(start + 1, min(opportunities, start + 100_000) + 1)
            write_rows(conn, service.schema.entities["opportunity"], [{
                "id": i, "name": f"deal {i}", "customer": rnd.randint(1, customers),
                "amount": rnd.randint(1, 10**6), "stage": stages[i % 5],
                "close_date": dt.date(2020, 1, 1) + dt.timedelta(days=i % 2000),
                "owner": (i // 5) % USERS + 1, **system} for i in chunk])
            chunk = range(start + 1, min(orders, start + 100_000) + 1)
            write_rows(conn, service.schema.entities["order"], [{
                "id": i, "customer": rnd.randint(1, customers),
                "order_date": today - dt.timedelta(days=rnd.randint(0, 1000)),
                "total": rnd.randint(10, 50_000), "owner": i % USERS + 1, **system}
                for i in chunk])
    if db.dialect.name == "postgresql":  # what autovacuum does after a bulk load
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return service


def timed(service, caller, report: str, runs: int) -> tuple[float, float, dict]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run_report(service, caller, report)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], result


def run(service, label: str, args) -> list[str]:
    admin = Caller(user_id=USERS + 1, roles=("admin",), username="admin")
    rep = Caller(user_id=1, roles=("rep",), username="u1")
    lines = []
    p50, p95, result = timed(service, admin, "pipeline", args.runs)
    assert sum(r[1] for r in result["rows"]) == args.opportunities
    lines.append(f"| {label} | group-by, {args.opportunities:,} opportunities, admin | "
                 f"{len(result['rows'])} | {p50:.0f} | {p95:.0f} |")
    p50, p95, result = timed(service, rep, "pipeline", args.runs)
    lines.append(f"| {label} | group-by, {args.opportunities:,} opportunities, rep (own) | "
                 f"{len(result['rows'])} | {p50:.0f} | {p95:.0f} |")
    p50, p95, result = timed(service, admin, "rfm", args.rfm_runs)
    lines.append(f"| {label} | rfm, {args.customers:,} customers, {args.orders:,} orders, "
                 f"admin | {len(result['rows']):,} | {p50:.0f} | {p95:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rfm-runs", type=int, default=5)
    parser.add_argument("--covering-index", action="store_true")
    parser.add_argument("--postgres")
    args = parser.parse_args()
    lines = ["| database | report | rows out | median ms | p95 ms |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        service = build(f"sqlite:///{tmp}/report.db", Path(tmp), args.opportunities,
                        args.customers, args.orders, args.covering_index)
        suffix = ", index (stage, amount)" if args.covering_index else ""
        lines += run(service, "SQLite" + suffix, args)
        service.engine.dispose()
        if args.postgres:
            admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text('DROP DATABASE IF EXISTS "crm_reportbench" WITH (FORCE)'))
                c.execute(sa.text('CREATE DATABASE "crm_reportbench"'))
            url = sa.engine.make_url(args.postgres).set(database="crm_reportbench")
            service = build(url.render_as_string(False), Path(tmp) / "pg", args.opportunities,
                            args.customers, args.orders, args.covering_index)
            lines += run(service, "PostgreSQL" + suffix, args)
            service.engine.dispose()
            with admin.connect() as c:
                c.execute(sa.text('DROP DATABASE IF EXISTS "crm_reportbench" WITH (FORCE)'))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
