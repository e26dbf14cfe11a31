"""Benchmark: GET one record over HTTP on one gunicorn worker, against a minimal hand-written
Flask + SQLAlchemy Core endpoint returning the same JSON, measured in the same run.

Run by hand (needs gunicorn: pip install gunicorn):  python bench/http_bench.py [--seconds 10]
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
    import os, sqlalchemy as sa
    from flask import Flask, jsonify, request
    engine = sa.create_engine(os.environ["CRM_DATABASE_URL"])
    table = sa.Table("e_product", sa.MetaData(), autoload_with=engine)
    tokens = sa.Table("crm_token", sa.MetaData(), autoload_with=engine)
    app = Flask(__name__)
    @app.get("/api/v1/product/<int:record_id>")
    def one(record_id):
        import hashlib
        token = request.headers.get("Authorization", "")[7:]
        with engine.connect() as conn:
            ok = conn.execute(sa.select(tokens.c.user_id).where(
                tokens.c.token_hash == hashlib.sha256(token.encode()).hexdigest())).first()
            if ok is None:
                return jsonify({"error": "unauthorized"}), 401
            row = conn.execute(sa.select(table).where(table.c.id == record_id,
                                                      table.c.deleted_at.is_(None))).mappings().first()
        data = {k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else
                    (str(v) if v is not None and k == "price" else v)) for k, v in row.items()
                if k != "deleted_at"}
        return jsonify({"data": data})
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


def load(port: int, path: str, token: str, seconds: float, threads: int = 4) -> float:
    count = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < stop:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
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
        path = f"/api/v1/product/{record['id']}"
        results = {}
        for name, module in (("engine (record service)", "engine_app"),
                             ("hand-written Flask + Core", "baseline")):
            process, port = serve(Path(tmp), module, env)
            try:
                load(port, path, token, 1.0)  # warm up
                results[name] = load_wrk(port, path, token, args.seconds) or \
                    load(port, path, token, args.seconds)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
    engine_rps = results["engine (record service)"]
    base_rps = results["hand-written Flask + Core"]
    print("| endpoint | requests/s | time per request vs hand-written |")
    print("|---|---|---|")
    print(f"| engine `GET /api/v1/product/<id>` | {engine_rps:,.0f} | "
          f"{base_rps / engine_rps:.2f}x |")
    print(f"| hand-written Flask + SQLAlchemy Core, same JSON | {base_rps:,.0f} | 1.00x |")


if __name__ == "__main__":
    main()
