"""Mail: IMAP fetch with UID checkpoints against a real dovecot, .eml/.mbox import, matching,
threading, search, permissions, and sending through a real (aiosmtpd) SMTP server."""

from __future__ import annotations

import io
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import BARE_ROOT, World, problems_of, write_site
from engine.errors import BadRequest, Forbidden, NotFound, ValidationFailed
from engine.mail.fetch import fetch
from engine.mail.imports import import_files
from engine.mail.send import MailSendFailed, send_from_record
from engine.mail.store import MailStore
from engine.mail.timeline import MailReader
from engine.records.access import SYSTEM
from engine.records.attachments import sweep_orphans
from engine.storage.database import write_transaction
from mailservers import (DOVECOT, IMAP_PASSWORD, REFUSED_DOMAIN, Dovecot, SmtpSink,
                         free_port)

MAIL = Path(__file__).parent / "fixtures" / "mail"
ENV = {"CRM_TEST_IMAP_PASSWORD": IMAP_PASSWORD, "CRM_TEST_SMTP_PASSWORD": SmtpSink.PASSWORD}
ENTITIES = {
    "entities/customer.yaml": """
        entity: customer
        fields:
          name: {type: string, required: true}
          email: {type: email}
        """,
    "entities/contact.yaml": """
        entity: contact
        fields:
          name: {type: string, required: true}
          email: {type: email}
          customer: {type: reference, to: customer}
        """,
    "entities/opportunity.yaml": """
        entity: opportunity
        fields:
          name: {type: string, required: true}
          code: {type: string}
          customer: {type: reference, to: customer}
        """,
    "roles.yaml": """
        roles:
          rep:
            entities:
              customer: {read: own, update: own, create: true}
              contact: {read: own, update: own}
              opportunity: {read: own, update: own}
          viewer:
            entities:
              customer: {read: all}
        """,
}


def app_yaml(folder: str, imap_port: int, smtp_port: int) -> str:
    return f"""app: mailtest
mail:
  addresses: [sales@ourco.example, "@ourco.example"]
  max_attachment_mb: 0.05
  match:
    - customer.email
    - field: contact.email
      follow: [customer]
  subject_refs: [opportunity.code, opportunity.id]
  mailboxes:
    sales:
      host: 127.0.0.1
      port: {imap_port}
      tls: none
      user: sales
      password_env: CRM_TEST_IMAP_PASSWORD
      folders: ["{folder}"]
  smtp:
    host: 127.0.0.1
    port: {smtp_port}
    tls: none
    user: crm
    password_env: CRM_TEST_SMTP_PASSWORD
    from: "Our Sales <sales@ourco.example>"
"""


@pytest.fixture(scope="module")
def servers():
    if not Path(DOVECOT).exists():
        pytest.fail("dovecot is not installed (.ci/run installs Debian's dovecot-imapd)")
    dovecot = Dovecot()
    smtp = SmtpSink()
    yield dovecot, smtp
    smtp.stop()
    dovecot.stop()


class MailWorld(World):
    """A migrated site with mail configured, a folder of its own on the IMAP server, and the
    records mail is matched to: Acme (owned by rep1) with its contact Bob, Globex (rep2)."""

    def __init__(self, url, folder_path: Path, servers, smtp_port: int | None = None,
                 entities: dict | None = None):
        dovecot, smtp = servers
        self.dovecot, self.smtp = dovecot, smtp
        self.folder = f"T{uuid.uuid4().hex[:10]}"
        site = write_site(folder_path, entities or ENTITIES, app_yaml(self.folder, dovecot.port,
                                                          smtp_port or smtp.port))
        super().__init__(url, site=site, root=BARE_ROOT)
        self.rep1 = self.user("rep1", "rep")
        self.rep2 = self.user("rep2", "rep")
        self.admin = self.user("boss", "admin")
        s = self.service
        self.acme = s.create(self.rep1, "customer", {"name": "Acme",
                                                     "email": "alice@acme-buyer.example"})["id"]
        self.globex = s.create(self.rep2, "customer", {"name": "Globex",
                                                       "email": "carol@globex.example"})["id"]
        self.bob = s.create(SYSTEM, "contact", {"name": "Bob", "email": "BOB@acme-buyer.example",
                                                "customer": self.acme, "owner": self.rep2.user_id}
                            )["id"]
        self.deal = s.create(SYSTEM, "opportunity", {"name": "Pumps", "code": "Q-7",
                                                     "customer": self.acme,
                                                     "owner": self.rep1.user_id})["id"]

    def fetch(self):
        return fetch(self.service, environ=ENV)

    def messages(self) -> list[dict]:
        table = self.service.schema.engine["mail_message"]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id))
                    .mappings()]

    def by_id(self, message_id: str) -> dict:
        return next(m for m in self.messages() if m["message_id"] == message_id)

    def links(self, message_row_id: int) -> set[tuple[str, int, str]]:
        table = self.service.schema.engine["mail_link"]
        with self.engine.connect() as conn:
            return {(r.entity, r.record_id, r.how) for r in conn.execute(
                sa.select(table).where(table.c.message_id == message_row_id))}

    def failures(self) -> list[dict]:
        table = self.service.schema.engine["mail_failure"]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id))
                    .mappings()]

    def checkpoint(self):
        with self.engine.connect() as conn:
            return MailStore(self.service).checkpoint(conn, "sales", self.folder)


@pytest.fixture
def mail(database_url, tmp_path, servers):
    world = MailWorld(database_url, tmp_path / "site", servers)
    yield world
    world.engine.dispose()


def eml(name: str) -> bytes:
    return (MAIL / name).read_bytes()


def message(frm: str, subject: str, message_id: str, body: str = "hello",
            attachment: bytes | None = None, **headers) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = frm, "sales@ourco.example", subject
    msg["Date"], msg["Message-ID"] = "Sat, 07 Jun 2025 10:00:00 +0000", message_id
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename="big.bin")
    return msg.as_bytes()


# ---------------------------------------------------------------- configuration


def test_mail_configuration_mistakes_are_reported_with_positions(tmp_path):
    site = write_site(tmp_path / "bad", ENTITIES, """app: bad
mail:
  match:
    - customer.name
    - custmer.email
    - field: contact.email
      follow: [name, custome]
  subject_refs: [opportunity.customer, opportunity.nope]
  smtp: {host: smtp.example, from: "Sales <sales@example.com>", user: s}
""")
    assert problems_of(site, BARE_ROOT) == [
        ("app.yaml", 4, 7, "mail-field-type"),
        ("app.yaml", 5, 7, "unknown-entity"),
        ("app.yaml", 7, 16, "mail-field-type"),
        ("app.yaml", 7, 22, "unknown-field"),
        ("app.yaml", 8, 18, "mail-field-type"),
        ("app.yaml", 8, 40, "unknown-field"),
        ("app.yaml", 9, 71, "missing-key"),
    ]
    shape = write_site(tmp_path / "shape", ENTITIES, """app: shape
mail:
  mailboxes:
    sales: {host: imap.example, user: s, password: secret}
  smtp: {host: smtp.example, from: "Sales <sales@example.com>", tls: tls}
""")
    assert problems_of(shape, BARE_ROOT) == [
        ("app.yaml", 4, 5, "missing-key"),
        ("app.yaml", 4, 42, "unknown-key"),
        ("app.yaml", 5, 70, "bad-value"),
    ]


def test_a_pack_may_carry_the_matching_and_a_site_without_match_matches_every_email_field(
        tmp_path, load):
    site = write_site(tmp_path / "site", ENTITIES, "app: plain\nmail:\n  addresses: [a@b.c]\n")
    registry = load(site, BARE_ROOT)
    assert sorted((m.entity, m.field) for m in registry.mail.matches) == [
        ("contact", "email"), ("customer", "email")]
    assert registry.mail.is_own("A@B.C") and not registry.mail.is_own("x@b.c")
    bare = write_site(tmp_path / "bare", ENTITIES, "app: bare\n")
    assert load(bare, BARE_ROOT).mail is None


# ---------------------------------------------------------------- IMAP


def test_fetch_twice_stores_once_and_later_fetches_read_only_new_mail(mail):
    mail.dovecot.append(mail.folder, eml("request.eml"), eml("stranger.eml"))
    [first] = mail.fetch()
    assert (first.stored, first.duplicates, first.failures, first.error) == (2, 0, [], None)
    [again] = mail.fetch()
    assert (again.stored, again.duplicates, again.failures) == (0, 0, [])  # the checkpoint
    validity, last_uid = mail.checkpoint()
    assert last_uid == 2
    mail.dovecot.append(mail.folder, eml("reply.eml"), eml("contact.eml"))
    [later] = mail.fetch()
    assert (later.stored, later.duplicates) == (2, 0)
    assert mail.checkpoint() == (validity, 4)
    rows = mail.messages()
    assert [r["message_id"] for r in rows] == [
        "<req-1@acme-buyer.example>", "<cold-1@unknown.example>", "<rep-1@ourco.example>",
        "<draw-1@acme-buyer.example>"]
    request, stranger, reply, drawing = rows
    assert [r["uid"] for r in rows] == [1, 2, 3, 4]
    assert request["direction"] == "in" and reply["direction"] == "out"
    assert request["from_address"] == "alice@acme-buyer.example"  # addresses lower-cased
    # threading by In-Reply-To; the reply inherits the request's links
    assert reply["thread_id"] == request["id"] == request["thread_id"]
    assert mail.links(request["id"]) == {("customer", mail.acme, "address")}
    assert mail.links(reply["id"]) == {("customer", mail.acme, "thread")}
    # unknown senders are kept, linked to nothing; a contact brings its customer along
    assert mail.links(stranger["id"]) == set()
    assert mail.links(drawing["id"]) == {("contact", mail.bob, "address"),
                                         ("customer", mail.acme, "address")}


def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(mail):
    mail.dovecot.append(mail.folder, eml("request.eml"), eml("stranger.eml"))
    assert mail.fetch()[0].stored == 2
    old_validity, _ = mail.checkpoint()
    mail.dovecot.recreate(mail.folder)
    mail.dovecot.append(mail.folder, eml("stranger.eml"), eml("request.eml"), eml("reply.eml"))
    [result] = mail.fetch()
    assert result.rescanned
    assert (result.stored, result.duplicates, result.failures) == (1, 2, [])
    validity, last_uid = mail.checkpoint()
    assert validity != old_validity and last_uid == 3
    assert len(mail.messages()) == 3


def test_malformed_mail_and_huge_attachments_do_not_stop_the_others(mail):
    big = message("Alice <alice@acme-buyer.example>", "Catalogue", "<big-1@acme-buyer.example>",
                  attachment=b"\x00\x01" * 40_000)  # 80 KB: over max_attachment_mb 0.05
    mail.dovecot.append(mail.folder, eml("request.eml"), eml("broken.eml"), big,
                        eml("garbled.eml"))
    [result] = mail.fetch()
    assert (result.stored, result.duplicates, len(result.failures)) == (3, 0, 1)
    assert "not an email" in result.failures[0] and "uid 2" in result.failures[0]
    assert mail.checkpoint()[1] == 4  # past the failure: it is logged, not retried
    [failure] = mail.failures()
    assert failure["source"] == f"imap sales/{mail.folder} uid 2"
    assert mail.service.files.get(failure["raw_key"]) .startswith(b"this is just some text")
    catalogue = mail.by_id("<big-1@acme-buyer.example>")
    assert catalogue["problems"] == [
        "attachment 'big.bin' (0.1 MB) is larger than the 0.05 MB limit; left out"]
    garbled = next(m for m in mail.messages() if m["subject"] == "Samples")
    assert garbled["message_id"].endswith("@no-message-id.invalid>")
    assert "Samples arrived" in garbled["text_body"]
    assert len(garbled["problems"]) == 3  # no Message-ID, the Date, the charset
    assert mail.links(garbled["id"]) == {("customer", mail.globex, "address")}
    reader = MailReader(mail.service)
    [with_file] = reader.for_record(mail.rep1, "customer", mail.acme)[0][1:]
    assert with_file["attachments"][0]["name"] == "specification.pdf"
    assert mail.fetch()[0].stored == 0


def test_a_wrong_password_or_a_missing_variable_is_reported_per_mailbox(mail):
    [result] = fetch(mail.service, environ={})
    assert result.error == "environment variable CRM_TEST_IMAP_PASSWORD (the password) is " \
                           "not set"
    [result] = fetch(mail.service, environ={"CRM_TEST_IMAP_PASSWORD": "wrong"})
    assert result.error.startswith("cannot sign in to 127.0.0.1:")
    assert mail.messages() == []


# ---------------------------------------------------------------- files, search, permissions


def test_import_eml_and_mbox_files_idempotently(mail):
    files = [MAIL / "request.eml", MAIL / "reply.eml", MAIL / "broken.eml",
             MAIL / "archive.mbox"]
    results = import_files(mail.service, files)
    assert [(r.stored, r.duplicates, len(r.failures)) for r in results] == [
        (1, 0, 0), (1, 0, 0), (0, 0, 1), (2, 0, 1)]
    assert results[3].failures[0].startswith(f"{MAIL / 'archive.mbox'} message 2: ")
    again = import_files(mail.service, files)
    assert [(r.stored, r.duplicates) for r in again] == [(0, 1), (0, 1), (0, 0), (0, 2)]
    chinese = mail.by_id("<quote-cn@globex.example>")
    assert chinese["subject"] == "报价单 quotation" and chinese["from_name"] == "王经理"
    assert mail.links(chinese["id"]) == set()  # a colleague of Carol's: not a known address
    reply = mail.by_id("<rep-1@ourco.example>")
    assert reply["thread_id"] == mail.by_id("<req-1@acme-buyer.example>")["id"]


def test_a_reply_stored_before_its_original_joins_the_original_thread(mail):
    import_files(mail.service, [MAIL / "reply.eml"])
    import_files(mail.service, [MAIL / "request.eml"])
    request = mail.by_id("<req-1@acme-buyer.example>")
    assert mail.by_id("<rep-1@ourco.example>")["thread_id"] == request["thread_id"] \
        == request["id"]


def test_subject_references_link_mail_to_the_record(mail):
    raw = [message("x@else.example", "About [Q-7] and the base", "<s-1@else.example>"),
           message("y@else.example", f"Re: pumps [opportunity#{mail.deal}]", "<s-2@else.example>"),
           message("z@else.example", "[opportunity#999999] nothing", "<s-3@else.example>")]
    for i, data in enumerate(raw):
        path = mail.registry.app.folder + f"/s{i}.eml"
        Path(path).write_bytes(data)
        import_files(mail.service, [path])
    assert mail.links(mail.by_id("<s-1@else.example>")["id"]) == {
        ("opportunity", mail.deal, "subject")}
    assert mail.links(mail.by_id("<s-2@else.example>")["id"]) == {
        ("opportunity", mail.deal, "subject")}
    assert mail.links(mail.by_id("<s-3@else.example>")["id"]) == set()


def test_search_and_timelines_follow_record_permissions(mail):
    import_files(mail.service, [MAIL / "request.eml", MAIL / "stranger.eml",
                                MAIL / "contact.eml", MAIL / "archive.mbox"])
    reader = MailReader(mail.service)

    def subjects(caller, text="", **options):
        return [m["subject"] for m in reader.search(caller, text, **options)[0]]

    assert subjects(mail.rep1, "pumps") == ["Price request for 200 pumps"]
    assert subjects(mail.rep1, "ALICE specification.pdf") == ["Price request for 200 pumps"]
    assert subjects(mail.rep1) == ["Drawings for the pump base", "Price request for 200 pumps"]
    # Globex's, and Bob's (rep2 owns Bob); the Chinese quotation's sender is unknown
    assert subjects(mail.rep2) == ["Order 7 confirmed", "Drawings for the pump base"]
    assert subjects(mail.admin, "报价") == ["报价单 quotation"]
    assert subjects(mail.rep2, "报价") == []
    assert subjects(mail.rep2, "100%") == []  # LIKE wildcards are literal
    assert subjects(mail.admin, unlinked=True) == ["报价单 quotation",
                                                   "Cold pitch: cheaper freight"]
    assert "Cold pitch: cheaper freight" not in subjects(mail.rep1) + subjects(mail.rep2)
    import base64
    huge = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|" + b"9" * 30).decode()
    with pytest.raises(BadRequest):  # a forged cursor: an id no column holds
        reader.search(mail.admin, cursor=huge)
    with pytest.raises(Forbidden) as refused:  # mail linked to nothing is for admins
        subjects(mail.rep1, unlinked=True)
    assert refused.value.fields == {"unlinked": ["only admins list the messages linked to no "
                                                 "record"]}
    timeline, cursor = reader.for_record(mail.rep1, "customer", mail.acme, limit=1)
    assert [m["subject"] for m in timeline] == ["Drawings for the pump base"] and cursor
    rest, end = reader.for_record(mail.rep1, "customer", mail.acme, cursor=cursor)
    assert [m["subject"] for m in rest] == ["Price request for 200 pumps"] and end is None
    # links shown are those to records the caller may read: Bob is rep2's
    assert timeline[0]["links"] == [{"entity": "customer", "id": mail.acme, "how": "address"}]
    with pytest.raises(NotFound):
        reader.for_record(mail.rep2, "customer", mail.acme)
    stranger = reader.search(mail.admin, "cold")[0][0]
    with pytest.raises(NotFound):
        reader.message(mail.rep2, stranger["id"])
    with pytest.raises(NotFound):  # rep2 cannot see the message, so cannot link it
        reader.link(mail.rep2, stranger["id"], "customer", mail.globex)
    with pytest.raises(ValidationFailed) as refused:
        reader.link(mail.admin, stranger["id"], "deal", 1)
    assert refused.value.fields == {"entity": ["mail is not linked to this entity"]}
    linked = reader.link(mail.admin, stranger["id"], "customer", mail.globex)
    assert linked["links"] == [{"entity": "customer", "id": mail.globex, "how": "manual"}]
    assert "Cold pitch: cheaper freight" in subjects(mail.rep2)


def test_relink_matches_mail_that_arrived_before_its_customer(mail):
    import_files(mail.service, [MAIL / "stranger.eml"])
    created = mail.service.create(mail.rep1, "customer", {"name": "Unknown Ltd",
                                                          "email": "someone@unknown.example"})
    with write_transaction(mail.engine) as conn:
        assert MailStore(mail.service).relink(conn) == 1
    with write_transaction(mail.engine) as conn:
        assert MailStore(mail.service).relink(conn) == 0
    assert mail.links(mail.by_id("<cold-1@unknown.example>")["id"]) == {
        ("customer", created["id"], "address")}


# ---------------------------------------------------------------- sending


def test_send_from_a_record_through_smtp_and_keep_it_on_the_timeline(mail):
    import_files(mail.service, [MAIL / "request.eml"])
    request = MailReader(mail.service).for_record(mail.rep1, "customer", mail.acme)[0][0]
    before = len(mail.smtp.received)
    sent = send_from_record(mail.service, mail.rep1, "opportunity", mail.deal, {
        "to": "Alice <alice@acme-buyer.example>", "cc": ["bob@acme-buyer.example"],
        "subject": "Our quotation", "body": "Please find the quotation attached.",
        "in_reply_to": None}, [], environ=ENV)
    assert sent["direction"] == "out" and sent["status"] == "sent"
    assert sent["subject"] == "Our quotation [Q-7]"  # the token brings answers back
    assert {(link["entity"], link["how"]) for link in sent["links"]} == {
        ("opportunity", "sent"), ("customer", "address")}
    mail_from, recipients, raw = mail.smtp.received[before]
    assert mail_from == "sales@ourco.example"
    assert recipients == ["alice@acme-buyer.example", "bob@acme-buyer.example"]
    delivered = message_from_bytes(raw, policy=policy.default)
    assert delivered["Message-ID"] == sent["message_id"]
    # an answer to a message of the record's timeline threads with it, with attachments
    from engine.records.uploads import Upload
    answer = send_from_record(mail.service, mail.rep1, "customer", mail.acme, {
        "to": "alice@acme-buyer.example", "subject": "Re: Price request", "body": "Attached.",
        "in_reply_to": request["id"]}, [Upload("quote.pdf", b"%PDF-1.4\n%%EOF\n")],
        environ=ENV)
    assert answer["thread_id"] == request["thread_id"]
    assert answer["in_reply_to"] == "<req-1@acme-buyer.example>"
    assert [a["name"] for a in answer["attachments"]] == ["quote.pdf"]
    delivered = message_from_bytes(mail.smtp.received[-1][2], policy=policy.default)
    assert [p.get_filename() for p in delivered.iter_attachments()] == ["quote.pdf"]
    # fetching the Sent folder later finds the same message: no second copy
    mail.dovecot.append(mail.folder, mail.smtp.received[-1][2])
    assert mail.fetch()[0].duplicates == 1
    assert sweep_orphans(mail.service, min_age=__import__("datetime").timedelta(0)) == []


def test_refusals_store_nothing_as_sent(mail):
    count = len(mail.messages())
    with pytest.raises(ValidationFailed) as invalid:
        send_from_record(mail.service, mail.rep1, "customer", mail.acme, {
            "to": "not-an-address, alice@acme-buyer.example", "subject": " ", "body": 3},
            [], environ=ENV)
    assert invalid.value.fields == {"to": ["not an email address: not-an-address"],
                                    "subject": ["is required"], "body": ["must be text"]}
    viewer = mail.user("viewer1", "viewer")  # reads every customer, changes none
    with pytest.raises(Forbidden):
        send_from_record(mail.service, viewer, "customer", mail.acme,
                         {"to": "a@b.example", "subject": "x"}, [], environ=ENV)
    with pytest.raises(NotFound):
        send_from_record(mail.service, mail.rep2, "customer", mail.acme,
                         {"to": "a@b.example", "subject": "x"}, [], environ=ENV)
    with pytest.raises(MailSendFailed) as refused:
        send_from_record(mail.service, mail.rep1, "customer", mail.acme, {
            "to": f"nobody@{REFUSED_DOMAIN}", "subject": "Hello"}, [], environ=ENV)
    assert refused.value.status == 502
    assert "refused every recipient" in refused.value.message and "550" in \
        refused.value.message
    with pytest.raises(MailSendFailed) as no_password:
        send_from_record(mail.service, mail.rep1, "customer", mail.acme, {
            "to": "alice@acme-buyer.example", "subject": "Hello"}, [], environ={})
    assert "CRM_TEST_SMTP_PASSWORD" in no_password.value.message
    assert len(mail.messages()) == count



def test_the_subject_token_never_shows_a_field_hidden_from_the_sender(database_url, tmp_path,
                                                                      servers):
    entities = dict(ENTITIES)
    entities["roles.yaml"] = ENTITIES["roles.yaml"].replace(
        "opportunity: {read: own, update: own}\n",
        "opportunity: {read: own, update: own}\n            fields:\n"
        "              opportunity.code: hidden\n")
    world = MailWorld(database_url, tmp_path / "site", servers, entities=entities)
    try:
        s = world.service
        secret = s.create(SYSTEM, "opportunity", {"name": "Valves", "code": "SECRET-CODE-42",
                                                  "customer": world.acme,
                                                  "owner": world.rep1.user_id})["id"]
        assert "code" not in s.get(world.rep1, "opportunity", secret)
        before = len(world.smtp.received)
        sent = send_from_record(s, world.rep1, "opportunity", secret, {
            "to": "alice@acme-buyer.example", "subject": "Our offer"}, [], environ=ENV)
        # the hidden code gives way to the next reference the sender may see
        assert sent["subject"] == f"Our offer [opportunity#{secret}]"
        assert b"SECRET-CODE-42" not in world.smtp.received[before][2]
        assert "SECRET-CODE-42" not in str(MailReader(s).message(world.admin, sent["id"]))
        # one who may read the field gets its token
        by_admin = send_from_record(s, world.admin, "opportunity", secret, {
            "to": "alice@acme-buyer.example", "subject": "Our offer"}, [], environ=ENV)
        assert by_admin["subject"] == "Our offer [SECRET-CODE-42]"
        # a value that is not one clean line is no token: the next one is used, and the
        # message still goes
        broken = s.create(SYSTEM, "opportunity", {"name": "Pipes", "code": "Q-8\u2028Bcc: x",
                                                  "customer": world.acme,
                                                  "owner": world.rep1.user_id})["id"]
        sent = send_from_record(s, world.admin, "opportunity", broken, {
            "to": "alice@acme-buyer.example", "subject": "Pipes"}, [], environ=ENV)
        assert sent["status"] == "sent" and sent["subject"] == f"Pipes [opportunity#{broken}]"
    finally:
        world.engine.dispose()


@pytest.mark.parametrize("bad", ["\n", "\r", "\x0b", "\x0c", "\x00", "\x1c", "\x85",
                                 "\u2028", "\u2029"])
def test_line_breaks_and_control_characters_are_refused_in_headers(mail, bad):
    count, delivered = len(mail.messages()), len(mail.smtp.received)
    with pytest.raises(ValidationFailed) as invalid:
        send_from_record(mail.service, mail.rep1, "customer", mail.acme, {
            "to": "alice@acme-buyer.example", "subject": f"Hello{bad}Bcc: x@evil.example"},
            [], environ=ENV)
    assert invalid.value.status == 422 and list(invalid.value.fields) == ["subject"]
    for field in ("to", "cc"):
        for entry in (f'"Alice{bad}Bcc: x@evil.example" <alice@acme-buyer.example>',
                      f"alice@acme-buyer.example{bad}"):
            with pytest.raises(ValidationFailed) as invalid:
                send_from_record(mail.service, mail.rep1, "customer", mail.acme, {
                    "to": "alice@acme-buyer.example", field: [entry], "subject": "Hello"},
                    [], environ=ENV)
            assert invalid.value.status == 422 and list(invalid.value.fields) == [field]
            assert "line breaks" in invalid.value.fields[field][0]
    assert len(mail.messages()) == count and len(mail.smtp.received) == delivered


def test_an_unreachable_smtp_server_is_a_clear_error(database_url, tmp_path, servers):
    world = MailWorld(database_url, tmp_path / "site", servers, smtp_port=free_port())
    try:
        with pytest.raises(MailSendFailed) as failed:
            send_from_record(world.service, world.rep1, "customer", world.acme, {
                "to": "alice@acme-buyer.example", "subject": "Hello"}, [], environ=ENV)
        assert "could not be reached" in failed.value.message
        assert world.messages() == []
    finally:
        world.engine.dispose()


# ---------------------------------------------------------------- HTTP and the command line


@pytest.fixture
def client(tmp_path, servers):
    world = MailWorld(f"sqlite:///{tmp_path / 'web.db'}", tmp_path / "site", servers)
    from web import create_app
    app = create_app(world.registry, world.engine)
    client = app.test_client()
    client.world = world
    yield client
    world.engine.dispose()


def token(client, username):
    response = client.post("/api/v1/auth/token", json={"username": username, "password": "pw"})
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_messages_api_send_and_download(client, monkeypatch):
    monkeypatch.setenv("CRM_TEST_SMTP_PASSWORD", SmtpSink.PASSWORD)
    world = client.world
    import_files(world.service, [MAIL / "request.eml"])
    rep1, rep2 = token(client, "rep1"), token(client, "rep2")
    listed = client.get(f"/api/v1/customer/{world.acme}/messages", headers=rep1)
    assert listed.status_code == 200
    [request] = listed.json["data"]
    assert listed.json["next_cursor"] is None
    assert request["from"] == {"name": "Alice Buyer", "address": "alice@acme-buyer.example"}
    file_url = (f"/api/v1/customer/{world.acme}/messages/{request['id']}/attachments/"
                f"{request['attachments'][0]['id']}")
    download = client.get(file_url, headers=rep1)
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert client.get(file_url, headers=rep2).status_code == 404
    assert client.get(f"/api/v1/customer/{world.acme}/messages", headers=rep2).status_code \
        == 404
    assert client.get(f"/api/v1/customer/{world.acme}/messages?limit=0",
                      headers=rep1).status_code == 400
    sent = client.post(f"/api/v1/customer/{world.acme}/messages", headers=rep1, data={
        "to": "alice@acme-buyer.example", "subject": "Samples", "body": "On their way.",
        "attachments": [(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "packing.pdf")]},
        content_type="multipart/form-data")
    assert sent.status_code == 201, sent.json
    assert sent.json["data"]["attachments"][0]["name"] == "packing.pdf"
    bad = client.post(f"/api/v1/customer/{world.acme}/messages", headers=rep1,
                      json={"to": "", "subject": "x", "colour": "red"})
    assert bad.status_code == 400 and bad.json["error"]["fields"] == {
        "colour": ["is not a field of a message"]}
    invalid = client.post(f"/api/v1/customer/{world.acme}/messages", headers=rep1,
                          json={"to": "", "subject": "x"})
    assert invalid.status_code == 422 and invalid.json["error"]["fields"] == {
        "to": ["is required"]}
    refused = client.post(f"/api/v1/customer/{world.acme}/messages", headers=rep1,
                          json={"to": f"x@{REFUSED_DOMAIN}", "subject": "x"})
    assert refused.status_code == 502 and refused.json["error"]["code"] == "mail_failed"
    found = client.get("/api/v1/mail/messages?q=samples", headers=rep1)
    assert [m["subject"] for m in found.json["data"]] == ["Samples"]
    assert client.get("/api/v1/mail/messages?q=samples", headers=rep2).json["data"] == []
    assert client.get(f"/api/v1/deal/{world.acme}/messages", headers=rep1).status_code == 404


def test_the_record_page_shows_threads_and_sends(client, monkeypatch):
    from test_web_ui import csrf_of, sign_in
    monkeypatch.setenv("CRM_TEST_SMTP_PASSWORD", SmtpSink.PASSWORD)
    world = client.world
    import_files(world.service, [MAIL / "request.eml", MAIL / "reply.eml"])
    sign_in(client, "rep1", "pw")
    page = client.get(f"/customer/{world.acme}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="mail"' in text
    assert text.index("Price request for 200 pumps") < text.index("our quotation is attached")
    assert 'value="alice@acme-buyer.example"' in text  # the compose form's To
    sent = client.post(f"/customer/{world.acme}/mail", data={
        "csrf_token": csrf_of(client, f"/customer/{world.acme}"),
        "to": "alice@acme-buyer.example", "subject": "Hello",
        "body": "From the page."})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("#mail")
    refused = client.post(f"/customer/{world.acme}/mail", data={
        "csrf_token": csrf_of(client, f"/customer/{world.acme}"), "to": "",
        "subject": ""})
    assert refused.status_code == 422
    assert "The email was not sent: To: is required" in refused.get_data(as_text=True)
    searched = client.get("/mail/search?q=hello").get_data(as_text=True)
    assert "From the page." in searched


def test_crm_mail_commands(tmp_path, servers):
    """On the standard model (metadata/): its customer and contact email fields."""
    from cli import cli
    dovecot, _ = servers
    folder = f"C{uuid.uuid4().hex[:10]}"
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.yaml").write_text(app_yaml(folder, dovecot.port, free_port()).replace(
        "  subject_refs: [opportunity.code, opportunity.id]\n", ""), encoding="utf-8")
    where = ["--site", str(site), "--database", f"sqlite:///{tmp_path / 'cli.db'}"]
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate", *where]).exit_code == 0
    done = runner.invoke(cli, ["mail", "import", str(MAIL / "request.eml"),
                               str(MAIL / "broken.eml"), *where])
    assert done.exit_code == 1, done.output
    assert f"{MAIL / 'request.eml'}: 1 new, 0 already stored, 0 failed" in done.output
    dovecot.append(folder, eml("stranger.eml"), eml("request.eml"))
    fetched = runner.invoke(cli, ["mail", "fetch", "--mailbox", "sales", *where],
                            env={"CRM_TEST_IMAP_PASSWORD": IMAP_PASSWORD})
    assert fetched.exit_code == 0, fetched.output
    assert fetched.output == f"sales/{folder}: 1 new, 1 already stored, 0 failed\n"
    unknown = runner.invoke(cli, ["mail", "fetch", "--mailbox", "nope", *where])
    assert unknown.exit_code == 1 and "no mailbox 'nope'" in unknown.output
    relinked = runner.invoke(cli, ["mail", "relink", *where])
    assert relinked.output == "0 links added\n"
