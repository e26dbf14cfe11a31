"""Real mail servers on loopback for the mail tests: Debian's dovecot (IMAP, started as a child
process with its own configuration in a temporary folder) and aiosmtpd (SMTP, in a thread)."""

from __future__ import annotations

import getpass
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
IMAP_USER, IMAP_PASSWORD = "sales", "imap-secret"
REFUSED_DOMAIN = "refused.example"  # the SMTP server refuses every recipient there


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dovecot_config(folder: Path, port: int) -> str:
    # as root, dovecot's own processes run as the users Debian's package made and mail is
    # stored as nobody; as anyone else, everything runs as that user
    if os.geteuid() == 0:
        internal, login, mail_user = "dovecot", "dovenull", "uid=nobody gid=nogroup"
    else:
        me = getpass.getuser()
        internal = login = me
        mail_user = f"uid={os.getuid()} gid={os.getgid()}"
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = crm-test-{port}
log_path = {folder}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/passwd
}}
userdb {{
  driver = static
  args = {mail_user} home={folder}/mail/%u
}}
mail_location = maildir:{folder}/mail/%u/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    """A dovecot IMAP server on 127.0.0.1 with one user, stopped by `stop()`."""

    def __init__(self):
        # its own folder, readable by dovecot's unprivileged processes (pytest's are not)
        folder = self.folder = Path(tempfile.mkdtemp(prefix="crm-dovecot-"))
        folder.chmod(0o755)
        self.port = free_port()
        (folder / "mail").mkdir(parents=True)
        (folder / "mail").chmod(0o777)
        (folder / "passwd").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
        (folder / "dovecot.conf").write_text(_dovecot_config(folder, self.port))
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(folder / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client().logout()
                return
            except (OSError, imaplib.IMAP4.error):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (folder / "dovecot.log")
                    self.stop()
                    raise RuntimeError("dovecot did not start: " + (
                        self.process.stderr.read().decode(errors="replace") +
                        (log.read_text() if log.exists() else "")))
                time.sleep(0.1)

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(IMAP_USER, IMAP_PASSWORD)
        return client

    def append(self, folder: str, *messages: bytes) -> None:
        client = self.client()
        try:
            client.create(folder)  # "already exists" is fine
            for raw in messages:
                status, data = client.append(folder, None, None, raw)
                assert status == "OK", data
        finally:
            client.logout()

    def recreate(self, folder: str) -> None:
        """Delete and create the folder again: the server gives it a new UIDVALIDITY."""
        client = self.client()
        try:
            assert client.delete(folder)[0] == "OK"
            assert client.create(folder)[0] == "OK"
        finally:
            client.logout()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it accepts, refuses
    recipients at REFUSED_DOMAIN, and takes a login (any user, password `smtp-secret`)."""

    PASSWORD = "smtp-secret"

    def __init__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.received: list[tuple[str, list[str], bytes]] = []
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if address.lower().endswith("@" + REFUSED_DOMAIN):
                    return "550 5.1.1 no such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                sink.received.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content or envelope.content))
                return "250 Message accepted for delivery"

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = getattr(auth_data, "password", b"") == self.PASSWORD.encode()
            return AuthResult(success=ok)

        self.port = free_port()
        # server_hostname: no reverse DNS look-up for each greeting
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost",
                                     authenticator=authenticate, auth_require_tls=False)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
