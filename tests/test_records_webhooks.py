"""Webhooks: outbox in the transaction, signed delivery to a real receiver, retries, SSRF."""

import datetime as dt
import hashlib
import hmac
import http.server
import json
import shutil
import threading

import pytest
import sqlalchemy as sa

from conftest import FIXTURES, World
from engine.errors import ValidationFailed
from engine.records.webhooks import UnsafeTarget, check_target

UTC = dt.timezone.utc


class Receiver:
    """An HTTP server on loopback that records what it receives; answers from a script."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.received = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver([500, 200])
    yield r
    r.close()


@pytest.fixture
def hooked(tmp_path, database_url, receiver, monkeypatch):
    site = tmp_path / "site"
    shutil.copytree(FIXTURES / "sites" / "process", site)
    (site / "app.yaml").write_text("app: hooks\nwebhook_allow: [127.0.0.1]\n")
    (site / "automations" / "to_erp.yaml").write_text(
        "automation: to_erp\nentity: ticket\nwhen: {transition: close}\n"
        f"do:\n  - webhook: {{url: 'http://127.0.0.1:{receiver.port}/hook', "
        "secret_env: CRM_TEST_HOOK_KEY}\n")
    (site / "automations" / "to_lan.yaml").write_text(
        "automation: to_lan\nentity: ticket\nwhen: {transition: escalate}\n"
        "do:\n  - webhook: {url: 'http://10.20.30.40/hook', secret_env: CRM_TEST_HOOK_KEY}\n")
    monkeypatch.setenv("CRM_TEST_HOOK_KEY", "s3cret")
    world = World(database_url, site=site)
    yield world
    world.engine.dispose()


def test_signed_delivery_after_commit_with_retry_and_log(hooked, receiver):
    rep = hooked.user("rep", "rep")
    ticket = hooked.service.create(rep, "ticket", {"subject": "Pump"})
    hooked.service.transition(rep, "ticket", ticket["id"], "close")
    assert receiver.received == []  # nothing is sent inside the transaction
    now = dt.datetime.now(UTC)
    first = hooked.service.webhooks.deliver_due(now)
    assert len(first) == 1 and "will retry" in first[0] and "HTTP 500" in first[0]
    assert hooked.service.webhooks.deliver_due(now) == []  # not due again yet
    second = hooked.service.webhooks.deliver_due(now + dt.timedelta(seconds=31))
    assert len(second) == 1 and "delivered" in second[0]
    headers, body = receiver.received[-1]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-CRM-Signature"] == expected
    payload = json.loads(body)
    assert payload["automation"] == "to_erp" and payload["record"]["state"] == "closed"
    assert payload["record"]["subject"] == "Pump"
    with hooked.engine.connect() as conn:
        log = conn.execute(sa.text("select status from crm_webhook_delivery order by id")).all()
    assert [r[0] for r in log] == [500, 200]
    assert hooked.service.webhooks.deliver_due(now + dt.timedelta(hours=2)) == []


def test_a_rolled_back_change_sends_nothing(hooked, receiver):
    rep = hooked.user("rep", "rep")
    ticket = hooked.service.create(rep, "ticket", {"subject": "stuck"})
    with pytest.raises(ValidationFailed):  # the close guard refuses 'stuck'
        hooked.service.transition(rep, "ticket", ticket["id"], "close")
    assert hooked.service.webhooks.deliver_due(dt.datetime.now(UTC) + dt.timedelta(days=1)) == []


def test_private_targets_are_refused(hooked):
    rep = hooked.user("rep", "rep")
    ticket = hooked.service.create(rep, "ticket", {"subject": "x"})
    with pytest.raises(ValidationFailed) as caught:
        hooked.service.transition(rep, "ticket", ticket["id"], "escalate")
    assert "10.20.30.40" in caught.value.fields["__all__"][0]
    assert hooked.service.get(rep, "ticket", ticket["id"])["state"] == "open"


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://localhost:8080/", "ftp://x.org/",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/",
                                 "http://10.0.0.1/", "http://192.168.1.1/", "file:///etc/passwd"])
def test_check_target_refuses_non_public_addresses(url):
    with pytest.raises(UnsafeTarget):
        check_target(url, ())


def test_check_target_allow_list():
    check_target("http://127.0.0.1:9/x", ("127.0.0.1",))
    check_target("http://10.1.2.3/x", ("10.0.0.0/8",))


def test_a_delivery_connects_to_the_address_it_checked_and_ignores_proxies(monkeypatch):
    """DNS rebinding: the name answers an allowed address to the check and another to the
    connection. The delivery connects to the checked one, and never through a proxy."""
    import socket

    from engine.records.webhooks import post_to
    checked, rebound = Receiver([]), None
    try:
        import http.server
        rebound = http.server.HTTPServer(("127.0.0.2", 0), http.server.BaseHTTPRequestHandler)
        answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 10)
        real = socket.getaddrinfo

        def rebinding(host, port, *args, **kwargs):
            if host != "hooks.example":
                return real(host, port, *args, **kwargs)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.2:{rebound.server_address[1]}")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.2:{rebound.server_address[1]}")
        url = f"http://hooks.example:{checked.port}/hook"
        addresses = check_target(url, ("127.0.0.1/32",), connect=True)
        assert addresses == ["127.0.0.1"]
        assert post_to(url, addresses, b"{}", {"Content-Type": "application/json"}) == 200
        assert len(checked.received) == 1
        assert checked.received[0][0]["Host"] == f"hooks.example:{checked.port}"
        with pytest.raises(UnsafeTarget, match="127.0.0.2 is a private"):
            check_target(url, ("127.0.0.1/32",), connect=True)  # the next answer is refused
    finally:
        checked.close()
        if rebound is not None:
            rebound.server_close()
