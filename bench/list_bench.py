"""Benchmark: a list page (filter, sort, 50 rows, reference titles) over 1M records.

Measured inside the record service (permissions, projection, cursor, capped total, titles),
for the first page and for a page behind a deep cursor. Run by hand:

    python bench/list_bench.py [--rows 1000000] [--postgres URL]
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
from engine.records.access import SYSTEM  # noqa: E402
from engine.storage.driver import write_rows  # noqa: E402
from engine.records.listing import parse_query  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.storage.database import connect  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

SITE = {
    "customer.yaml": "entity: customer\nfields:\n  name: {type: string, required: true}\n"
                     "  grade: {type: enum, options: [a, b, c]}\n",
    "deal.yaml": "entity: deal\nfields:\n  name: {type: string, required: true}\n"
                 "  customer: {type: reference, to: customer}\n  amount: {type: money}\n"
                 "  stage: {type: enum, options: [new, qualified, proposal, won, lost], "
                 "index: true}\n  close_date: {type: date}\n"
                 "indexes:\n  - [stage, close_date]\nlist:\n  sort: -close_date\n",
}


def build(url: str, folder: Path, rows: int, customers: int):
    site = folder / "site"
    (site / "entities").mkdir(parents=True)
    (site / "app.yaml").write_text("app: listbench\n")
    for name, text in SITE.items():
        (site / "entities" / name).write_text(text)
    registry = engine.load_registry(site=site, root=REPO / "tests" / "fixtures" / "bare_root")
    db = connect(url)
    migrate(db, registry)
    service = RecordService(registry, db)
    stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    rnd = random.Random(1)
    system = {"version": 1, "created_at": stamp, "updated_at": stamp, "owner": None}
    with db.begin() as conn:
        write_rows(conn, service.schema.entities["customer"],
                   [{"id": i, "name": f"客户 {i}", "grade": "abc"[i % 3], **system}
                    for i in range(1, customers + 1)])
    stages = ["new", "qualified", "proposal", "won", "lost"]
    for start in range(0, rows, 100_000):
        with db.begin() as conn:
            write_rows(conn, service.schema.entities["deal"], [{
                "id": i, "name": f"deal {i}", "customer": rnd.randint(1, customers),
                "amount": rnd.randint(1, 10**6), "stage": stages[i % 5],
                "close_date": dt.date(2020, 1, 1) + dt.timedelta(days=i % 2000), **system}
                for i in range(start + 1, min(rows, start + 100_000) + 1)])
    if db.dialect.name == "postgresql":  # what autovacuum does after a bulk load
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return service


def timed(service, params: dict, runs: int) -> tuple[float, float, object]:
    samples = []
    page = None
    for _ in range(runs):
        started = time.perf_counter()
        page = service.list(SYSTEM, "deal", parse_query(params))
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], page


def run(service, label: str, runs: int = 200) -> list[str]:
    params = {"stage": "won", "sort": "-close_date", "limit": "50"}
    p50, p95, first = timed(service, params, runs)
    assert len(first.data) == 50 and first.titles["customer"]
    cursor = first.next_cursor
    for _ in range(400):  # walk 20,000 rows deep
        cursor = service.list(SYSTEM, "deal", parse_query({**params, "cursor": cursor})).next_cursor
    d50, d95, deep = timed(service, {**params, "cursor": cursor}, runs)
    assert len(deep.data) == 50
    return [f"| {label} | first page | {p50:.1f} | {p95:.1f} |",
            f"| {label} | page behind 20,000 rows | {d50:.1f} | {d95:.1f} |"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    lines = ["| database | page | median ms | p95 ms |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        service = build(f"sqlite:///{tmp}/list.db", Path(tmp), args.rows, args.customers)
        lines += run(service, f"SQLite, {args.rows:,} deals")
        service.engine.dispose()
        if args.postgres:
            admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text('DROP DATABASE IF EXISTS "crm_listbench" WITH (FORCE)'))
                c.execute(sa.text('CREATE DATABASE "crm_listbench"'))
            url = sa.engine.make_url(args.postgres).set(database="crm_listbench")
            service = build(url.render_as_string(False), Path(tmp) / "pg", args.rows,
                            args.customers)
            lines += run(service, f"PostgreSQL, {args.rows:,} deals")
            service.engine.dispose()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
