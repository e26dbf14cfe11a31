"""Benchmark: GET one record, GET a list page and POST a new record over HTTP on one gunicorn
worker, against minimal hand-written Flask + SQLAlchemy Core endpoints returning the same JSON
(the create writes its audit entry too), measured in the same run.

Run by hand (needs gunicorn: pip install -e '.[deploy]'):  python bench/http_bench.py [--seconds 10]
The load comes from client threads in this process with keep-alive connections.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "tests" / "fixtures" / "sites" / "records"
ROOT = REPO / "tests" / "fixtures" / "bare_root"

BASELINE = textwrap.dedent('''
    import datetime as dt, hashlib, json, os, sqlalchemy as sa
    from decimal import Decimal, InvalidOperation
    from flask import Flask, jsonify, request
    engine = sa.create_engine(os.environ["CRM_DATABASE_URL"])

    @sa.event.listens_for(engine, "connect")
    def same_settings(dbapi_connection, record):  # as the engine's own SQLite connections
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    table = sa.Table("e_product", sa.MetaData(), autoload_with=engine)
    tokens = sa.Table("crm_token", sa.MetaData(), autoload_with=engine)
    audit = sa.Table("crm_audit", sa.MetaData(), autoload_with=engine)
    app = Flask(__name__)

    def user_of(conn):
        token = request.headers.get("Authorization", "")[7:]
        row = conn.execute(sa.select(tokens.c.user_id).where(
            tokens.c.token_hash == hashlib.sha256(token.encode()).hexdigest())).first()
        return row[0] if row else None

    def as_json(row):
        return {k: (v.isoformat().replace("+00:00", "Z") + ("Z" if "+" not in v.isoformat()
                                                             else "")
                    if hasattr(v, "isoformat") else
                    (f"{v:.2f}" if v is not None and k == "price" else v))
                for k, v in row.items() if k != "deleted_at"}

    @app.get("/api/v1/product/<int:record_id>")
    def one(record_id):
        with engine.connect() as conn:
            if user_of(conn) is None:
                return jsonify({"error": "unauthorized"}), 401
            row = conn.execute(sa.select(table).where(table.c.id == record_id,
                                                      table.c.deleted_at.is_(None))).mappings().first()
        return jsonify({"data": as_json(row)})

    @app.get("/api/v1/product")
    def page():
        with engine.connect() as conn:
            if user_of(conn) is None:
                return jsonify({"error": "unauthorized"}), 401
            rows = conn.execute(sa.select(table).where(table.c.deleted_at.is_(None))
                                .order_by(table.c.id).limit(51)).mappings().all()
            total = conn.execute(sa.select(sa.func.count()).select_from(
                sa.select(sa.literal(1)).select_from(table).where(table.c.deleted_at.is_(None))
                .limit(10001).subquery())).scalar()
        data = [as_json(r) for r in rows[:50]]
        return jsonify({"data": data, "next_cursor": str(rows[49]["id"]) if len(rows) > 50
                        else None, "total": total, "refs": {}})

    @app.post("/api/v1/product")
    def create():
        body = request.get_json()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            return jsonify({"error": "name"}), 422
        try:
            price = Decimal(str(body["price"])) if body.get("price") is not None else None
        except InvalidOperation:
            return jsonify({"error": "price"}), 422
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with engine.begin() as conn:
            user = user_of(conn)
            if user is None:
                return jsonify({"error": "unauthorized"}), 401
            record_id = conn.execute(table.insert().values(
                name=name.strip(), price=price, version=1, created_at=now, updated_at=now,
                created_by=user, updated_by=user, owner=user)).inserted_primary_key[0]
            conn.execute(audit.insert().values(entity="product", record_id=record_id,
                                               action="create", user_id=user, at=now,
                                               changes={}))
            row = conn.execute(sa.select(table).where(table.c.id == record_id)).mappings().first()
        return jsonify({"data": as_json(row)}), 201
''')

ENGINE_APP = textwrap.dedent('''
    import os, engine
    from engine.storage.database import connect
    from web import create_app
    registry = engine.load_registry(site=os.environ["CRM_SITE"])
    app = create_app(registry, connect(os.environ["CRM_DATABASE_URL"]))
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, method: str, path: str, token: str, seconds: float,
         threads: int = 4) -> float:
    count = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    body = json.dumps({"name": "Valve", "price": "3.20"}) if method == "POST" else None
    expected = 201 if method == "POST" else 200

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < stop:
            conn.request(method, path, body=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == expected, response.status
            done += 1
        with lock:
            count[0] += done

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return count[0] / (time.perf_counter() - started)


def load_wrk(port: int, path: str, token: str, seconds: float) -> float | None:
    """Requests per second measured by wrk (Debian's package), when it is installed."""
    import shutil
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{int(seconds)}s", "-H",
                          f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def serve(module_dir: Path, module: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "1",
         "--bind", f"127.0.0.1:{port}", "--chdir", str(module_dir), f"{module}:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{module} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ["CRM_CONTENT_ROOT"] = str(ROOT)
    import engine
    from engine.records.access import SYSTEM
    from engine.records.service import RecordService
    from engine.storage.database import connect
    from engine.storage.migrate import migrate
    from web.auth import Tokens
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/http.db"
        registry = engine.load_registry(site=SITE, root=ROOT)
        db = connect(url)
        migrate(db, registry)
        service = RecordService(registry, db)
        from engine.records.users import Users
        user_id = Users(registry, db, service.schema).create("bench", "pw", ["admin"])
        record = service.create(SYSTEM, "product", {"name": "Pump", "price": "12.50"})
        token = Tokens(db, service.schema, 30).issue(user_id)
        db.dispose()
        (Path(tmp) / "baseline.py").write_text(BASELINE)
        (Path(tmp) / "engine_app.py").write_text(ENGINE_APP)
        env = dict(os.environ, CRM_SITE=str(SITE), CRM_DATABASE_URL=url,
                   PYTHONPATH=str(REPO), CRM_CONTENT_ROOT=str(ROOT))
        for i in range(200):  # a list page needs more than one page of records
            service.create(SYSTEM, "product", {"name": f"Part {i}", "price": f"{i}.50"})
        cases = [("GET one record", "GET", f"/api/v1/product/{record['id']}"),
                 ("GET a list page (50 rows, total)", "GET", "/api/v1/product"),
                 ("POST a new record", "POST", "/api/v1/product")]
        results = {}
        for name, module in (("engine", "engine_app"), ("hand-written", "baseline")):
            process, port = serve(Path(tmp), module, env)
            try:
                for case, method, path in cases:
                    load(port, method, path, token, 1.0)  # warm up
                    results[name, case] = (None if method == "POST" else
                                           load_wrk(port, path, token, args.seconds)) or \
                        load(port, method, path, token, args.seconds)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
    print("| request | engine requests/s | hand-written requests/s | time vs hand-written |")
    print("|---|---|---|---|")
    for case, _, _ in cases:
        engine_rps, base_rps = results["engine", case], results["hand-written", case]
        print(f"| {case} | {engine_rps:,.0f} | {base_rps:,.0f} | {base_rps / engine_rps:.2f}x |")


if __name__ == "__main__":
    main()
