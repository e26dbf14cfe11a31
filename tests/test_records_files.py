"""File fields and attachments in the engine: configuration checks, upload checks (type from
the bytes, limits), storage by opaque key, audit, permissions, import/export, orphan sweep."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import BARE_ROOT, World, problems_of, write_site
from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.records.access import SYSTEM
from engine.records.attachments import AUDIT_KEY, sweep_orphans
from engine.records.uploads import Upload, clean_name, sniff
from engine.storage.database import write_transaction
from engine.storage.files import LocalFileStore, MissingFile, files_folder

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FILES_SITE = {
    "entities/contract.yaml": """
        entity: contract
        fields:
          name: {type: string, required: true}
          scan: {type: file, max_mb: 0.001, accept: [application/pdf, image/*]}
          notes: {type: file}
          secret_doc: {type: file}
        """,
    "roles.yaml": """
        roles:
          rep:
            entities:
              contract: {read: own, create: true, update: own, delete: own}
            fields:
              contract.secret_doc: hidden
          viewer:
            entities:
              contract: {read: all}
        """,
}


def files_site(folder: Path, app: str | None = None) -> Path:
    return write_site(folder, FILES_SITE, app)


@pytest.fixture
def world(database_url, tmp_path):
    w = World(database_url, site=files_site(tmp_path / "site"), root=BARE_ROOT)
    yield w
    w.engine.dispose()


def stored_keys(world) -> set[str]:
    return {key for key, _ in world.service.files.keys()}


# ---------------------------------------------------------------- configuration


def test_shape_mistakes_of_file_keys(tmp_path):
    site = write_site(tmp_path / "bad", {"entities/doc.yaml": """
        entity: doc
        fields:
          name: {type: string}
          a: {type: file, max_mb: 0}
          b: {type: file, max_mb: -2}
          h: {type: file, accept: []}
          k: {type: file, accept: application/pdf}
        """}, app="app: bad\nfiles_dir: 7\n")
    assert problems_of(site, BARE_ROOT) == [
        ("app.yaml", 2, 12, "wrong-type"),
        ("entities/doc.yaml", 4, 27, "bad-value"),
        ("entities/doc.yaml", 5, 27, "bad-value"),
        ("entities/doc.yaml", 6, 27, "empty-value"),
        ("entities/doc.yaml", 7, 27, "wrong-type"),
    ]


def test_file_field_mistakes_are_all_reported_with_their_place(tmp_path):
    site = write_site(tmp_path / "bad", {"entities/doc.yaml": """
        entity: doc
        fields:
          name: {type: string}
          c: {type: file, accept: [text/csv, application/pdff, image/*, bogus/*]}
          d: {type: file, max_length: 10}
          e: {type: file, default: "x.pdf"}
          f: {type: file, unique: true}
          g: {type: file, compute: "name"}
          i: {type: file, index: true}
          j: {type: file, max_mb: 5, accept: [Application/PDF, application/pdf]}
          items: {type: lines, entity: doc_line}
        """, "entities/doc_line.yaml": """
        entity: doc_line
        parent: doc
        fields:
          photo: {type: file}
        """})
    assert problems_of(site, BARE_ROOT) == [
        ("entities/doc.yaml", 4, 28, "bad-value"),
        ("entities/doc.yaml", 4, 38, "bad-value"),
        ("entities/doc.yaml", 4, 65, "bad-value"),
        ("entities/doc.yaml", 5, 19, "key-not-for-type"),
        ("entities/doc.yaml", 6, 19, "key-not-for-type"),
        ("entities/doc.yaml", 7, 19, "key-not-for-type"),
        ("entities/doc.yaml", 8, 19, "key-not-for-type"),
        ("entities/doc.yaml", 9, 19, "key-not-for-type"),
        ("entities/doc_line.yaml", 4, 3, "file-in-child"),
    ]


def test_accept_messages_name_the_fix(tmp_path):
    import engine
    site = write_site(tmp_path / "bad", {"entities/doc.yaml": """
        entity: doc
        fields:
          c: {type: file, accept: [text/csv, application/pdff]}
        """})
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=site, root=BARE_ROOT)
    messages = [p.message for p in caught.value.problems]
    assert messages == [
        "field 'c': accept: 'text/csv' is not a content type the engine recognises from a "
        "file's bytes (text files are recognised as text/plain)",
        "field 'c': accept: 'application/pdff' is not a content type the engine recognises "
        "from a file's bytes (did you mean 'application/pdf'?)",
    ]


def test_a_good_file_field_compiles(tmp_path):
    import engine
    registry = engine.load_registry(site=files_site(tmp_path / "s", "app: s\nfiles_dir: up\n"),
                                    root=BARE_ROOT)
    scan = registry.entities["contract"].fields["scan"]
    assert (scan.type, scan.max_mb, scan.accept) == ("file", 0.001, ("application/pdf",
                                                                      "image/*"))
    assert registry.app.files_dir == "up"


# ---------------------------------------------------------------- the store and sniffing


def test_local_store_keys_are_opaque_and_cannot_leave_its_folder(tmp_path):
    store = LocalFileStore(tmp_path / "files")
    key = store.put(b"hello")
    assert len(key) == 32 and store.get(key) == b"hello" and store.exists(key)
    assert (tmp_path / "files" / key[:2] / key[2:4] / key).read_bytes() == b"hello"
    assert [k for k, _ in store.keys()] == [key]
    (tmp_path / "secret").write_bytes(b"s")
    for bad in ("../secret", "../../secret", key.upper(), key + "/..", "", None, "a" * 31):
        assert not store.exists(bad)
        with pytest.raises(MissingFile):
            store.get(bad)
    assert store.put(b"hello") != key  # random keys: the same bytes twice are two files
    store.delete(key)
    store.delete(key)  # deleting twice is fine
    assert not store.exists(key)
    with pytest.raises(MissingFile):
        store.get(key)
    assert not list(tmp_path.joinpath("files").rglob(".incoming-*"))


def test_files_folder_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_FILES_DIR", raising=False)
    assert files_folder(str(tmp_path), None) == tmp_path / "files"
    assert files_folder(str(tmp_path), "up/load") == tmp_path / "up" / "load"
    assert files_folder(str(tmp_path), "/srv/files") == Path("/srv/files")
    monkeypatch.setenv("CRM_FILES_DIR", str(tmp_path / "env"))
    assert files_folder(str(tmp_path), "up") == tmp_path / "env"


def test_content_type_comes_from_the_bytes_not_the_name():
    assert sniff(PDF) == "application/pdf"
    assert sniff(PNG) == "image/png"
    assert sniff("名字,amount\n张三,1\n".encode()) == "text/plain"
    assert sniff(b"\xef\xbb\xbfcsv,with,bom\n") == "text/plain"
    assert sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>") == "text/plain"
    assert sniff(b"\x00\x01\x02binary") == "application/octet-stream"
    assert sniff(b"\xff\xfe\xfa not utf-8") == "application/octet-stream"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\Users\\me\\報告.pdf") == "報告.pdf"
    assert clean_name("a\x00b\nc.txt") == "abc.txt"
    assert clean_name("..") == "file" and clean_name(None) == "file"
    long = clean_name("x" * 300 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")


# ---------------------------------------------------------------- record values


def test_an_upload_is_stored_by_key_and_shown_without_it(world):
    admin = world.user("admin", "admin")
    record = world.service.create(admin, "contract", {
        "name": "A", "scan": Upload("../../etc/scan.PDF", PDF),
        "notes": {"name": "notes.txt", "content_base64": base64.b64encode(b"hi").decode()}})
    scan = record["scan"]
    assert {k: scan[k] for k in ("name", "size", "content_type", "sha256")} == {
        "name": "scan.PDF", "size": len(PDF), "content_type": "application/pdf",
        "sha256": hashlib.sha256(PDF).hexdigest()}
    assert world.service.files.get(scan["key"]) == PDF
    assert record["notes"]["content_type"] == "text/plain"
    assert world.service.files.get(record["notes"]["key"]) == b"hi"
    from engine.records.values import to_json
    shown = to_json(world.registry.entities["contract"].fields["scan"], scan)
    assert shown == {"name": "scan.PDF", "size": len(PDF), "content_type": "application/pdf",
                     "sha256": hashlib.sha256(PDF).hexdigest()}


def test_every_bad_file_is_reported_and_nothing_is_written(world):
    admin = world.user("admin", "admin", locale="zh")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(world.user("en_admin", "admin"), "contract", {
            "name": "A", "scan": Upload("looks.pdf", b"plain text, named like a pdf"),
            "notes": Upload("empty.txt", b""), "secret_doc": "report.pdf"})
    assert caught.value.fields == {
        "scan": ["is a text/plain file; allowed: application/pdf, image/*"],
        "notes": ["is an empty file"],
        "secret_doc": ["a file cannot be set from text (files are not imported): upload it on "
                       "the record's page or through the API"]}
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "contract", {
            "name": "A", "scan": Upload("big.pdf", PDF + b"0" * 1100),
            "notes": {"name": "x", "content_base64": "not base64!"},
            "secret_doc": {"name": "x.pdf", "size": 3}})
    assert caught.value.fields == {
        "scan": ["文件不能超过 0.001 MB"], "notes": ["content_base64 不是有效的 base64"],
        "secret_doc": ["需要上传文件（multipart/form-data，或 JSON 中的 "
                       "{\"name\", \"content_base64\"}）"]}
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from e_contract")).scalar() == 0
    assert stored_keys(world) == set()  # refused files never reach the store


def test_replace_keep_and_clear_are_audited(world):
    admin = world.user("admin", "admin")
    service = world.service
    record = service.create(admin, "contract", {"name": "A", "scan": Upload("a.pdf", PDF)})
    first = record["scan"]
    # sent back as read (a read-modify-write client): unchanged
    shown = {k: v for k, v in first.items() if k != "key"}
    kept = service.update(admin, "contract", record["id"], {"scan": shown, "name": "B"},
                          record["version"])
    assert kept["scan"] == first
    replaced = service.update(admin, "contract", record["id"], {"scan": Upload("b.png", PNG)},
                              kept["version"])
    assert replaced["scan"]["name"] == "b.png" and replaced["scan"]["key"] != first["key"]
    cleared = service.update(admin, "contract", record["id"], {"scan": None},
                             replaced["version"])
    assert cleared["scan"] is None
    entries, _ = service.history(admin, "contract", record["id"])
    changes = [(e["action"], e["changes"].get("scan")) for e in entries]
    public_first = {k: first[k] for k in ("name", "size", "content_type", "sha256")}
    public_second = {k: replaced["scan"][k] for k in ("name", "size", "content_type", "sha256")}
    assert changes == [("update", [public_second, None]),
                       ("update", [public_first, public_second]),
                       ("update", None),
                       ("create", [None, public_first])]
    assert "key" not in str(entries)  # the store's keys never leave the engine


def test_required_file_and_same_file_needs_a_matching_checksum(tmp_path, database_url):
    site = write_site(tmp_path / "req", {"entities/doc.yaml": """
        entity: doc
        fields:
          name: {type: string}
          file: {type: file, required: true}
        """})
    w = World(database_url, site=site, root=BARE_ROOT)
    try:
        admin = w.user("admin", "admin")
        with pytest.raises(ValidationFailed) as caught:
            w.service.create(admin, "doc", {"name": "x"})
        assert caught.value.fields == {"file": ["is required"]}
        record = w.service.create(admin, "doc", {"file": Upload("a.txt", b"a")})
        with pytest.raises(ValidationFailed) as caught:  # another checksum is no "keep"
            w.service.update(admin, "doc", record["id"], {"file": {"sha256": "0" * 64}},
                             record["version"])
        assert list(caught.value.fields) == ["file"]
        with pytest.raises(ValidationFailed) as caught:
            w.service.update(admin, "doc", record["id"], {"file": None}, record["version"])
        assert caught.value.fields == {"file": ["is required"]}
    finally:
        w.engine.dispose()


# ---------------------------------------------------------------- permissions


def test_field_files_follow_record_and_field_permissions(world):
    admin, rep, other = world.user("admin", "admin"), world.user("rep", "rep"), \
        world.user("rep2", "rep")
    record = world.service.create(rep, "contract", {"name": "A", "scan": Upload("a.pdf", PDF)})
    world.service.update(admin, "contract", record["id"],
                         {"secret_doc": Upload("s.txt", b"secret")}, record["version"])
    files = world.service.attachments
    meta, data = files.field_content(rep, "contract", record["id"], "scan")
    assert data == PDF and meta["name"] == "a.pdf" and "key" not in meta
    assert files.field_content(admin, "contract", record["id"], "secret_doc")[1] == b"secret"
    for caller, field in ((rep, "secret_doc"), (other, "scan"), (rep, "name"),
                          (rep, "nonsense"), (rep, "notes")):
        with pytest.raises(NotFound):
            files.field_content(caller, "contract", record["id"], field)
    with pytest.raises(ValidationFailed) as caught:  # a hidden field cannot be written
        world.service.update(rep, "contract", record["id"], {"secret_doc": None}, 2)
    assert list(caught.value.fields) == ["secret_doc"]
    world.service.delete(rep, "contract", record["id"], 2)
    with pytest.raises(NotFound):
        files.field_content(admin, "contract", record["id"], "scan")


def test_attachments_follow_the_record_and_are_audited(world):
    rep, other, viewer = world.user("rep", "rep"), world.user("rep2", "rep"), \
        world.user("v", "viewer")
    service = world.service
    record = service.create(rep, "contract", {"name": "A"})
    added = service.attachments.add(rep, "contract", record["id"], Upload("报价.txt", b"quote"))
    assert {k: added[k] for k in ("name", "size", "content_type", "created_by")} == {
        "name": "报价.txt", "size": 5, "content_type": "text/plain", "created_by": rep.user_id}
    second = service.attachments.add(rep, "contract", record["id"],
                                     {"name": "p.png", "content_base64":
                                      base64.b64encode(PNG).decode()})
    assert [a["name"] for a in service.attachments.list(viewer, "contract", record["id"])] == [
        "报价.txt", "p.png"]
    assert service.attachments.content(viewer, "contract", record["id"], added["id"]) == (
        added, b"quote")
    with pytest.raises(Forbidden):
        service.attachments.add(viewer, "contract", record["id"], Upload("x.txt", b"x"))
    with pytest.raises(Forbidden):
        service.attachments.delete(viewer, "contract", record["id"], added["id"])
    for call in (lambda: service.attachments.list(other, "contract", record["id"]),
                 lambda: service.attachments.add(other, "contract", record["id"],
                                                 Upload("x.txt", b"x")),
                 lambda: service.attachments.content(rep, "contract", record["id"], 999),
                 lambda: service.attachments.content(rep, "contract", record["id"] + 1,
                                                     added["id"])):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(ValidationFailed) as caught:
        service.attachments.add(rep, "contract", record["id"], Upload("e.txt", b""))
    assert caught.value.fields == {"file": ["is an empty file"]}
    service.attachments.delete(rep, "contract", record["id"], added["id"])
    with pytest.raises(NotFound):
        service.attachments.delete(rep, "contract", record["id"], added["id"])
    assert [a["id"] for a in service.attachments.list(rep, "contract", record["id"])] == [
        second["id"]]
    assert service.get(rep, "contract", record["id"])["version"] == 1  # not a field change
    entries, _ = service.history(rep, "contract", record["id"])
    assert [(e["action"], e["changes"][AUDIT_KEY][0] and e["changes"][AUDIT_KEY][0]["name"],
             e["changes"][AUDIT_KEY][1] and e["changes"][AUDIT_KEY][1]["name"])
            for e in entries[:3]] == [("detach", "报价.txt", None), ("attach", None, "p.png"),
                                      ("attach", None, "报价.txt")]
    service.delete(rep, "contract", record["id"], 1)
    with pytest.raises(NotFound):  # a deleted record's attachments are gone with it
        service.attachments.list(rep, "contract", record["id"])


# ---------------------------------------------------------------- orphans


def test_a_rolled_back_write_leaves_an_orphan_that_the_sweep_removes(world):
    admin = world.user("admin", "admin")
    service = world.service
    kept = service.create(admin, "contract", {"name": "kept", "scan": Upload("k.pdf", PDF)})
    gone = service.create(admin, "contract", {"name": "deleted", "notes": Upload("d", b"d")})
    service.delete(admin, "contract", gone["id"], 1)  # soft delete keeps its file
    cleared = service.create(admin, "contract", {"name": "c", "notes": Upload("c", b"c")})
    service.update(admin, "contract", cleared["id"], {"notes": None}, 1)
    attached = service.attachments.add(admin, "contract", kept["id"], Upload("a", b"a"))
    detached = service.attachments.add(admin, "contract", kept["id"], Upload("b", b"b"))
    service.attachments.delete(admin, "contract", kept["id"], detached["id"])
    with pytest.raises(RuntimeError):
        with write_transaction(world.engine) as conn:
            service.create(admin, "contract", {"name": "x", "notes": Upload("x", b"x")},
                           conn=conn)
            raise RuntimeError("the transaction fails after the file was stored")
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from e_contract where name = 'x'")
                            ).scalar() == 0
    contents = {key: service.files.get(key) for key in stored_keys(world)}
    assert sorted(contents.values()) == [PDF, b"a", b"b", b"c", b"d", b"x"]
    assert sweep_orphans(service) == []  # every file is younger than the default hour
    orphans = sweep_orphans(service, dt.timedelta(0), dry_run=True)
    assert sorted(contents[k] for k in orphans) == [b"b", b"c", b"x"]
    assert len(stored_keys(world)) == 6  # a dry run removes nothing
    assert sweep_orphans(service, dt.timedelta(0)) == orphans
    assert sorted(service.files.get(k) for k in stored_keys(world)) == [PDF, b"a", b"d"]
    assert service.attachments.content(admin, "contract", kept["id"], attached["id"])[1] == b"a"
    assert service.attachments.field_content(admin, "contract", kept["id"], "scan")[1] == PDF


def test_a_file_missing_from_the_store_is_a_not_found(world):
    admin = world.user("admin", "admin")
    record = world.service.create(admin, "contract", {"name": "A", "scan": Upload("a.pdf", PDF)})
    world.service.files.delete(record["scan"]["key"])
    with pytest.raises(NotFound) as caught:
        world.service.attachments.field_content(admin, "contract", record["id"], "scan")
    assert caught.value.message == "the file's content is missing from the file store"


# ---------------------------------------------------------------- import and export


def test_export_shows_the_name_and_import_never_sets_files(world):
    from engine.records.transfer import export_rows, import_rows
    admin = world.user("admin", "admin")
    service = world.service
    record = service.create(admin, "contract", {"name": "A", "scan": Upload("a.pdf", PDF)})
    rows = list(export_rows(service, admin, "contract"))
    header, row = rows[0], rows[1]
    assert row[header.index("scan")] == "a.pdf" and row[header.index("notes")] is None
    result = import_rows(service, admin, "contract", ["id", "version", "name", "scan", "notes"], [
        (2, [str(record["id"]), "1", "A2", "a.pdf", ""]),  # as exported: the file stays
        (3, ["", "", "New", "", ""]),
        (4, ["", "", "Bad", "other.pdf", ""]),
        (5, [str(record["id"]), "", "A3", "renamed.pdf", ""]),
    ])
    assert (result.created, result.updated) == (1, 1)
    reason = ("a file cannot be set from text (files are not imported): upload it on the "
              "record's page or through the API")
    assert [(r.line, r.reasons) for r in result.rejected] == [
        (4, [f"scan: {reason}"]), (5, [f"scan: {reason}"])]
    after = service.get(SYSTEM, "contract", record["id"])
    assert after["name"] == "A2" and after["scan"] == record["scan"]


def test_crm_sweep_files_command(tmp_path):
    import subprocess
    import sys
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    site = files_site(tmp_path / "site")
    w = World(url, site=site, root=BARE_ROOT)
    admin = w.user("admin", "admin")
    record = w.service.create(admin, "contract", {"name": "A", "notes": Upload("a", b"a")})
    w.service.update(admin, "contract", record["id"], {"notes": Upload("b", b"b")}, 1)
    orphan = record["notes"]["key"]
    w.engine.dispose()
    env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(site),
               CRM_DATABASE_URL=url)
    env.pop("CRM_FILES_DIR", None)

    def crm(*args):
        return subprocess.run([sys.executable, str(Path(__file__).parents[1] / "cli.py"),
                               "sweep-files", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
    young = crm()
    assert young.returncode == 0 and young.stdout == ""
    assert "0 unreferenced files removed" in young.stderr
    listed = crm("--dry-run", "--min-age", "0")
    assert listed.stdout.split() == [orphan] and "1 unreferenced files found" in listed.stderr
    assert crm("--min-age", "0").stdout.split() == [orphan]
    assert not LocalFileStore(site / "files").exists(orphan)
    assert crm("--min-age", "0").stdout == ""
