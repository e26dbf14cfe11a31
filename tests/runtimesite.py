"""A small site for the runtime tests (tests/test_runtime*.py), and a webhook receiver that
counts each delivery id it gets."""

from __future__ import annotations

import collections
import http.server
import shutil
import threading
import time
from pathlib import Path

from conftest import FIXTURES

HOOK_KEY = "runtime-hook-secret"


def runtime_site(folder: Path, port: int) -> Path:
    """Copy the runtime fixture site into `folder`, with a webhook on every new ticket to
    the receiver on `port`."""
    site = folder / "site"
    shutil.copytree(FIXTURES / "sites" / "runtime", site)
    (site / "automations" / "hook_created.yaml").write_text(
        "automation: hook_created\nentity: ticket\nwhen: {event: created}\n"
        f"do:\n  - webhook: {{url: 'http://127.0.0.1:{port}/hook', "
        "secret_env: CRM_TEST_HOOK_KEY}\n")
    return site


class Receiver:
    """A threaded HTTP server on loopback counting the X-CRM-Delivery ids it receives."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.status = 200
        self.slow = 0.0  # seconds each answer waits (to catch deliveries in flight)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
            disable_nagle_algorithm = True

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.slow:
                    time.sleep(receiver.slow)
                with receiver.lock:
                    receiver.counts[int(self.headers["X-CRM-Delivery"])] += 1
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def duplicates(self) -> dict[int, int]:
        with self.lock:
            return {k: v for k, v in self.counts.items() if v > 1}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
