"""Benchmark: validated import of 100k rows x 15 fields through the record service.

Compared, in the same run and on the same machine, with the floor: the raw driver writing the
same rows (with their system columns) into the same table: sqlite3 `executemany` on SQLite,
`COPY` on PostgreSQL. Run by hand:

    python bench/import_bench.py [--rows 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
from engine.records.access import SYSTEM  # noqa: E402
from engine.records.bulk import create_many  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.storage.database import connect, write_transaction  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

ENTITY = """
entity: contact_bench
fields:
  name: {type: string, required: true, max_length: 100}
  email: {type: email}
  phone: {type: phone}
  website: {type: url}
  company: {type: string, max_length: 200}
  city: {type: string}
  tier: {type: enum, options: [a, b, c]}
  source: {type: enum, options: [web, fair, referral, call]}
  revenue: {type: money, min: 0}
  discount: {type: percent}
  score: {type: decimal, precision: 8, scale: 2}
  employees: {type: integer, min: 0}
  since: {type: date}
  active: {type: boolean}
  notes: {type: text}
search: [name, company]
"""
FIELDS = ["name", "email", "phone", "website", "company", "city", "tier", "source", "revenue",
          "discount", "score", "employees", "since", "active", "notes"]
CITIES = ["上海", "北京", "深圳", "Hangzhou", "Suzhou", "Chengdu"]


def make_rows(n: int) -> list[dict]:
    rnd = random.Random(7)
    rows = []
    for i in range(n):
        rows.append({
            "name": f"联系人 {i}", "email": f"user{i}@example.com", "phone": f"+86 21 {i:08d}",
            "website": f"https://example{i % 97}.com", "company": f"公司 {i % 5000} Ltd",
            "city": CITIES[i % len(CITIES)], "tier": "abc"[i % 3],
            "source": ("web", "fair", "referral", "call")[i % 4],
            "revenue": f"{rnd.randint(0, 10**7)}.{rnd.randint(0, 99):02d}",
            "discount": str(rnd.randint(0, 30)), "score": f"{rnd.random() * 1000:.2f}",
            "employees": str(rnd.randint(1, 5000)),
            "since": (dt.date(2015, 1, 1) + dt.timedelta(days=i % 3000)).isoformat(),
            "active": "true" if i % 2 else "false", "notes": f"note {i}"})
    return rows


def setup(url: str, folder: Path):
    site = folder / "site"
    (site / "entities").mkdir(parents=True, exist_ok=True)
    (site / "app.yaml").write_text("app: bench\n")
    (site / "entities" / "contact_bench.yaml").write_text(ENTITY)
    registry = engine.load_registry(site=site, root=REPO / "tests" / "fixtures" / "bare_root")
    db = connect(url)
    migrate(db, registry)
    return registry, db


def typed(rows: list[dict]) -> list[dict]:
    """The rows as the raw driver gets them: already typed, with system columns."""
    stamp = dt.datetime(2024, 1, 1)
    out = []
    for r in rows:
        out.append({**r, "revenue": float(r["revenue"]), "discount": float(r["discount"]),
                    "score": float(r["score"]), "employees": int(r["employees"]),
                    "since": r["since"], "active": r["active"] == "true",
                    "version": 1, "created_at": stamp, "updated_at": stamp})
    return out


def raw_sqlite(path: str, rows: list[dict]) -> float:
    import sqlite3
    columns = FIELDS + ["version", "created_at", "updated_at"]
    data = [tuple(r[c] if not isinstance(r[c], dt.datetime) else r[c].isoformat(" ")
                  for c in columns) for r in typed(rows)]
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    con.executemany(f"INSERT INTO e_contact_bench ({', '.join(columns)}) VALUES "
                    f"({', '.join('?' for _ in columns)})", data)
    con.commit()
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def raw_copy(url: str, rows: list[dict]) -> float:
    import psycopg
    columns = FIELDS + ["version", "created_at", "updated_at"]
    data = [tuple(r[c] for c in columns) for r in typed(rows)]
    conninfo = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as con:
        started = time.perf_counter()
        with con.cursor() as cur:
            with cur.copy(f"COPY e_contact_bench ({', '.join(columns)}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
        con.commit()
        return time.perf_counter() - started


def service_import(registry, db, rows: list[dict], batch: int = 1000) -> float:
    service = RecordService(registry, db)
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        with write_transaction(db) as conn:
            outcomes = create_many(service, SYSTEM, "contact_bench", rows[start:start + batch],
                                   conn)
            bad = [o.error for o in outcomes if o.error is not None]
            if bad:
                raise SystemExit(f"unexpected rejection: {bad[0].fields}")
    return time.perf_counter() - started


def run(url_for, name: str, raw, n: int) -> str:
    rows = make_rows(n)
    with tempfile.TemporaryDirectory() as tmp:
        url = url_for(Path(tmp), "service")
        registry, db = setup(url, Path(tmp) / "a")
        service_s = service_import(registry, db, rows)
        db.dispose()
        raw_url = url_for(Path(tmp), "raw")
        registry, db = setup(raw_url, Path(tmp) / "b")
        db.dispose()
        raw_s = raw(raw_url, rows)
    return (f"| {name} | {n:,} | {n / service_s:,.0f} | {service_s:.2f} | {n / raw_s:,.0f} | "
            f"{raw_s:.2f} | {service_s / raw_s:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    print("| database | rows | service rows/s | service s | raw rows/s | raw s | ratio |")
    print("|---|---|---|---|---|---|---|")
    print(run(lambda tmp, kind: f"sqlite:///{tmp / (kind + '.db')}", "SQLite (raw: executemany)",
              lambda url, rows: raw_sqlite(url.removeprefix("sqlite:///"), rows), args.rows))
    if args.postgres:
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")

        def pg_url(tmp, kind):
            name = f"crm_bench_{kind}"
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            return sa.engine.make_url(args.postgres).set(database=name).render_as_string(False)
        print(run(pg_url, "PostgreSQL (raw: COPY)", raw_copy, args.rows))


if __name__ == "__main__":
    main()
