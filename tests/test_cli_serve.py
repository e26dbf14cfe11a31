"""`crm serve`: the API over HTTP, with the background work running in-process."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import BARE_ROOT, FIXTURES

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_the_api_and_stops(tmp_path):
    env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT),
               CRM_SITE=str(FIXTURES / "sites" / "process"),
               CRM_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}")
    run = lambda *a: subprocess.run([sys.executable, str(REPO / "cli.py"), *a], env=env,  # noqa
                                    capture_output=True, text=True, timeout=120)
    assert run("migrate").returncode == 0
    assert run("user", "add", "boss", "--role", "manager", "--password", "pw").returncode == 0
    port = free_port()
    server = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/me", timeout=1)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                assert json.loads(exc.read())["error"]["code"] == "unauthorized"
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("crm serve did not answer")
        request = urllib.request.Request(base + "/auth/token", method="POST",
                                         data=json.dumps({"username": "boss",
                                                          "password": "pw"}).encode(),
                                         headers={"Content-Type": "application/json"})
        token = json.loads(urllib.request.urlopen(request, timeout=5).read())["token"]
        me = urllib.request.Request(base + "/me", headers={"Authorization": f"Bearer {token}"})
        assert json.loads(urllib.request.urlopen(me, timeout=5).read())["username"] == "boss"
    finally:
        server.terminate()  # SIGTERM: the background work is handed back, then a clean exit
        assert server.wait(timeout=20) == 0


def test_the_scheduler_asks_for_nothing_when_nothing_is_due(world):
    from engine.runtime.context import Runtime
    from engine.runtime.scheduler import Scheduler
    runtime = Runtime(world.registry, world.engine, service=world.service, root=BARE_ROOT)
    assert Scheduler(runtime).run_once() == []  # the records site has no schedules


def test_demo_builds_once_and_prints_credentials(tmp_path):
    env = dict(os.environ)
    env.pop("CRM_SITE", None)
    env.pop("CRM_DATABASE_URL", None)
    run = lambda: subprocess.run([sys.executable, str(REPO / "cli.py"), "demo", "--no-serve",  # noqa
                                  "--dir", str(tmp_path / "demo")], env=env, capture_output=True,
                                 text=True, timeout=300)
    first = run()
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    admin = next(l for l in lines if l.strip().startswith("admin / "))
    assert "sales_rep / " in first.stdout
    second = run()
    assert second.returncode == 0 and admin in second.stdout.splitlines()
    assert (tmp_path / "demo" / "crm.db").is_file()
