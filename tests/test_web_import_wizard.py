"""The admin console's import wizard (/admin/import, web/import_wizard.py): upload, column
mapping remembered per header, protected fields refused however the form is posted, a dry run
that writes nothing, a run with progress, the rejected rows as a file that imports again, files
that are not CSV/XLSX or too large refused, and nothing at all for a non-admin."""

import csv
import datetime as dt
import html as html_lib
import io
import re
import time

import pytest
import sqlalchemy as sa

from engine.records import importjobs
from engine.records.importfiles import REASON_COLUMN
from engine.records.importmapping import targets
from conftest import World
from pgdb import create_database
from engine.storage.database import is_sqlite, write_transaction
from engine.storage.search import fts_table
from test_web_ui import csrf_of, html, sign_in
from engine.runtime.embedded import EmbeddedRunner
from web import create_app

GOOD_AND_BAD = ("Name,Code,Tier,Employees,Credit limit\r\n"
                "Acme,AC-001,b,10,1000\r\n"
                "Bolt,bad code,b,20,2000\r\n"
                "Cedar,CE-003,c,-5,3000\r\n"
                "Dune,DU-004,,40,\r\n")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site_(request, tmp_path_factory):
    """One migrated site with its users and app per database, shared by this module's tests
    (each test starts from empty tables: see `wizard`)."""
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('wizard') / 'test.db'}"
    else:
        url, drop = create_database(request.getfixturevalue("postgres_server_url"))
    world = World(url)
    world.users.create("root", "pw-root", ["admin"], display_name="Root")
    world.users.create("boss", "pw-boss", ["admin"], display_name="Boss")
    world.users.create("rep", "pw-rep", ["rep"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_SECRET_KEY", "test-secret-key")
        app = create_app(world.registry, world.engine)
        # the import runs as a background job: here on the in-process runner `crm serve` has
        runner = EmbeddedRunner(app.extensions["crm_runtime"])
        yield world, app, app.config["MAX_CONTENT_LENGTH"]
        runner.stop()
    world.engine.dispose()
    if drop:
        drop()


@pytest.fixture
def wizard(site_):
    """A fresh test client of the shared app, over empty record and import tables."""
    world, app, limit = site_
    schema = world.service.schema
    with write_transaction(world.engine) as conn:
        for table in ("import_job", "import_mapping", "audit", "sequence"):
            conn.execute(schema.engine[table].delete())
        for name in ("note", "deal_line", "deal", "account", "product"):
            conn.execute(schema.entities[name].delete())
            entity = world.registry.entities[name]
            if is_sqlite(conn) and entity.search_fields:
                conn.execute(fts_table(entity).delete())
    app.config["MAX_CONTENT_LENGTH"] = limit  # a test may lower it
    client = app.test_client()
    client.world = world
    client.app_ = app
    return client


# ---------------------------------------------------------------- helpers

def upload(client, entity, name, content: bytes | str):
    if isinstance(content, str):
        content = content.encode("utf-8")
    return client.post("/admin/import", data={
        "entity": entity, "file": (io.BytesIO(content), name),
        "csrf_token": csrf_of(client, "/admin/import")}, content_type="multipart/form-data")


def uploaded(client, entity, name, content) -> int:
    response = upload(client, entity, name, content)
    assert response.status_code == 302, html(response)
    match = re.fullmatch(r"/admin/import/(\d+)/map", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def proposed(client, job_id) -> list[str]:
    """The choice each column's select shows on the mapping page ("" for ignore)."""
    page = html(client.get(f"/admin/import/{job_id}/map"))
    found = []
    for index, body in re.findall(r'<select id="f-col-(\d+)" name="col-\d+"[^>]*>(.*?)</select>',
                                  page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        found.append(chosen.group(1) if chosen else "")
    return found


def offered(client, job_id) -> set[str]:
    page = html(client.get(f"/admin/import/{job_id}/map"))
    body = re.search(r'<select id="f-col-0"[^>]*>(.*?)</select>', page, re.S).group(1)
    return set(re.findall(r'<option value="([^"]*)"', body))


def map_columns(client, job_id, mapping, all_or_nothing=False):
    data = {f"col-{i}": target for i, target in enumerate(mapping)}
    if all_or_nothing:
        data["all_or_nothing"] = "1"
    data["csrf_token"] = csrf_of(client, f"/admin/import/{job_id}/map")
    return client.post(f"/admin/import/{job_id}/map", data=data)


def run(client, job_id) -> dict:
    """Run a mapped job and wait for its background job; return its final progress."""
    token = csrf_of(client, f"/admin/import/{job_id}/preview")
    response = client.post(f"/admin/import/{job_id}/run", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == \
        f"/admin/import/{job_id}"
    deadline = time.monotonic() + 60
    while True:
        progress = client.get(f"/admin/import/{job_id}/progress").json
        if progress["state"] not in ("queued", "running"):
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)


def field_errors(page: str) -> dict[str, list[str]]:
    found = {}
    for name, text in re.findall(r'<div class="error" data-field="([^"]+)">([^<]*)</div>', page):
        found.setdefault(name, []).append(html_lib.unescape(text))
    return found


def accounts(world) -> list[tuple]:
    table = world.service.schema.entities["account"]
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(table.c.name, table.c.code, table.c.employees, table.c.created_by)
            .where(table.c.deleted_at.is_(None)).order_by(table.c.name))]


def state(world):
    """Everything the wizard could write: jobs, remembered mappings, records, audit."""
    tables = world.service.schema
    names = {"import_job": tables.engine["import_job"], "import_mapping":
             tables.engine["import_mapping"], "audit": tables.engine["audit"],
             "account": tables.entities["account"], "product": tables.entities["product"]}
    with world.engine.connect() as conn:
        return {name: sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(t)))
                for name, t in names.items()}


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_bytes(rows) -> bytes:
    from openpyxl import Workbook
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xlsx_rows(data: bytes) -> list[list]:
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(data)).active
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]


# ---------------------------------------------------------------- the whole flow

def test_upload_map_check_run_download_fix_and_import_again_csv(wizard):
    world = wizard.world
    sign_in(wizard, "root")
    assert 'href="/admin/import"' in html(wizard.get("/admin/users"))  # the console's tab
    job_id = uploaded(wizard, "account", "accounts.csv", GOOD_AND_BAD)
    # headers are labels: each column is proposed its field
    assert proposed(wizard, job_id) == ["name", "code", "tier", "employees", "credit_limit"]
    response = map_columns(wizard, job_id, ["name", "code", "tier", "employees", "credit_limit"])
    assert response.headers["Location"] == f"/admin/import/{job_id}/preview"

    before = state(world)
    page = html(wizard.get(f"/admin/import/{job_id}/preview"))
    assert state(world) == before  # the dry run wrote nothing, not even an audit entry
    assert "The first 4 of 4 rows were checked; nothing was written." in page
    assert "They would give: 2 created, 0 updated, 2 rejected." in page
    rows = re.findall(r'<td data-label="Line" class="line">(\d+)</td>\s*<td[^>]*>'
                      r'<ul class="reasons">(.*?)</ul>', page, re.S)
    assert [(line, re.findall(r"<li>([^<]*)</li>", reasons)) for line, reasons in rows] == [
        ("3", ["code: does not have the expected format"]),
        ("4", ["employees: must be at least 0"])]

    progress = run(wizard, job_id)
    assert progress == {"state": "done", "done": 4, "total": 4, "percent": 100, "created": 2,
                        "updated": 0, "rejected": 2, "rolled_back": False}
    root = world.users.by_username("root")
    assert accounts(world) == [("Acme", "AC-001", 10, root), ("Dune", "DU-004", 40, root)]
    audit = world.service.schema.engine["audit"]
    with world.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(audit.c.action, audit.c.user_id).where(
            audit.c.entity == "account"))) == [("create", root), ("create", root)]
    page = html(wizard.get(f"/admin/import/{job_id}"))
    assert "2 created, 0 updated, 2 rejected" in page
    assert f'href="/admin/import/{job_id}/rejected"' in page

    download = wizard.get(f"/admin/import/{job_id}/rejected")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "accounts-rejected.csv" in download.headers["Content-Disposition"]
    rejected = read_csv(download.data)
    assert rejected == [
        ["Name", "Code", "Tier", "Employees", "Credit limit", REASON_COLUMN],
        ["Bolt", "bad code", "b", "20", "2000", "code: does not have the expected format"],
        ["Cedar", "CE-003", "c", "-5", "3000", "employees: must be at least 0"]]

    # fixed and imported again: the reason column is ignored, the mapping is remembered
    rejected[1][1], rejected[2][3] = "BO-002", "30"
    out = io.StringIO()
    csv.writer(out).writerows(rejected)
    again = uploaded(wizard, "account", "accounts-rejected.csv", out.getvalue())
    assert proposed(wizard, again) == ["name", "code", "tier", "employees", "credit_limit"]
    assert "ignored" in html(wizard.get(f"/admin/import/{again}/map"))
    assert map_columns(wizard, again, ["name", "code", "tier", "employees", "credit_limit",
                                       ""]).status_code == 302
    assert run(wizard, again)["created"] == 2
    assert [a[:3] for a in accounts(world)] == [("Acme", "AC-001", 10), ("Bolt", "BO-002", 20),
                                                ("Cedar", "CE-003", 30), ("Dune", "DU-004", 40)]
    # the upload is dropped once the run ends; the job cannot run twice
    jobs = world.service.schema.engine["import_job"]
    with world.engine.connect() as conn:
        assert list(conn.execute(sa.select(jobs.c.content).where(jobs.c.id == again))) == [
            (None,)]
    token = csrf_of(wizard, f"/admin/import/{again}")
    assert wizard.post(f"/admin/import/{again}/run", data={"csrf_token": token}) \
        .headers["Location"] == f"/admin/import/{again}"
    assert len(accounts(world)) == 4


def test_an_xlsx_file_gives_xlsx_rejected_rows_that_import_again(wizard):
    world = wizard.world
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "account", "book.xlsx", xlsx_bytes([
        ["Name", "Employees", "Founded"], ["Xeno", 5, dt.datetime(2001, 2, 3)],
        ["Yarrow", -1, dt.datetime(2002, 3, 4)], ["Zed", 7, None]]))
    assert proposed(wizard, job_id) == ["name", "employees", "founded"]
    assert map_columns(wizard, job_id, ["name", "employees", "founded"]).status_code == 302
    assert run(wizard, job_id)["rejected"] == 1
    download = wizard.get(f"/admin/import/{job_id}/rejected")
    assert download.mimetype == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    rows = xlsx_rows(download.data)
    assert rows == [["Name", "Employees", "Founded", REASON_COLUMN],
                    ["Yarrow", -1, dt.datetime(2002, 3, 4), "employees: must be at least 0"]]
    rows[1][1] = 6
    again = uploaded(wizard, "account", "book-rejected.xlsx", xlsx_bytes(rows))
    assert proposed(wizard, again) == ["name", "employees", "founded"]
    map_columns(wizard, again, ["name", "employees", "founded", ""])
    assert run(wizard, again)["created"] == 1
    assert [a[:3] for a in accounts(world)] == [("Xeno", None, 5), ("Yarrow", None, 6),
                                                ("Zed", None, 7)]


def test_a_gbk_csv_with_id_and_version_columns_updates_records(wizard):
    world = wizard.world
    root = world.users.caller(world.users.by_username("root"))
    first = world.service.create(root, "account", {"name": "Old"})
    second = world.service.create(root, "account", {"name": "Other"})
    sign_in(wizard, "root")
    content = (f"id,version,Name\r\n{first['id']},1,上海公司\r\n"
               f"{second['id']},7,广州公司\r\n,,北京公司\r\n").encode("gb18030")
    job_id = uploaded(wizard, "account", "gbk.csv", content)
    assert proposed(wizard, job_id) == ["id", "version", "name"]
    map_columns(wizard, job_id, ["id", "version", "name"])
    progress = run(wizard, job_id)
    assert (progress["created"], progress["updated"], progress["rejected"]) == (1, 1, 1)
    assert [a[:1] for a in accounts(world)] == [("Other",), ("上海公司",), ("北京公司",)]
    rejected = read_csv(wizard.get(f"/admin/import/{job_id}/rejected").data)
    assert rejected[1][:3] == [str(second["id"]), "7", "广州公司"]


def test_all_or_nothing_imports_nothing_when_a_row_is_rejected(wizard):
    world = wizard.world
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "account", "accounts.csv", GOOD_AND_BAD)
    map_columns(wizard, job_id, ["name", "code", "tier", "employees", "credit_limit"],
                all_or_nothing=True)
    progress = run(wizard, job_id)
    assert (progress["created"], progress["rejected"], progress["rolled_back"]) == (0, 2, True)
    assert accounts(world) == []
    assert "Nothing was imported: 2 rows were rejected" in html(wizard.get(
        f"/admin/import/{job_id}"))
    assert len(read_csv(wizard.get(f"/admin/import/{job_id}/rejected").data)) == 3


# ---------------------------------------------------------------- the mapping

def test_the_mapping_is_remembered_per_entity_and_header(wizard):
    sign_in(wizard, "root")
    header = "Firma,Kode,Notiz\r\nAcme,AC-001,x\r\n"
    job_id = uploaded(wizard, "account", "a.csv", header)
    assert proposed(wizard, job_id) == ["", "", ""]  # nothing matches by name
    map_columns(wizard, job_id, ["name", "code", ""])
    assert proposed(wizard, uploaded(wizard, "account", "b.csv", header)) == ["name", "code", ""]
    # another header, or another entity, starts afresh
    assert proposed(wizard, uploaded(wizard, "account", "c.csv", "Firma,Kode\r\nA,B\r\n")) == \
        ["", ""]
    assert proposed(wizard, uploaded(wizard, "product", "d.csv", header)) == ["", "", ""]
    # the newest choice wins
    third = uploaded(wizard, "account", "e.csv", header)
    map_columns(wizard, third, ["name", "", "notes"])
    assert proposed(wizard, uploaded(wizard, "account", "f.csv", header)) == ["name", "", "notes"]


def test_only_writable_fields_are_offered(wizard):
    world = wizard.world
    root = world.users.caller(world.users.by_username("root"))
    entities = world.registry.entities
    assert sorted(targets(world.service, root, entities["account"])) == sorted([
        "name", "code", "tier", "tags", "email", "phone", "website", "employees",
        "credit_limit", "discount", "rating", "active", "founded", "last_contact", "notes",
        "secret", "extra", "parent", "manager_user", "tax_id", "locked_note", "vip_since"])
    # no autonumber, rollup, computed, workflow state, lines
    assert sorted(targets(world.service, root, entities["deal"])) == [
        "account", "amount", "title", "vip_terms"]
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "deal", "deals.csv", "Title,Stage\r\nBig,won\r\n")
    assert offered(wizard, job_id) == {"", "id", "version", "account", "amount", "title",
                                       "vip_terms"}
    assert proposed(wizard, job_id) == ["title", ""]  # Stage is the workflow's: not proposed


def test_a_protected_field_is_refused_even_when_posted_by_hand(wizard):
    world = wizard.world
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "deal", "deals.csv",
                      "A,B,C,D,E,F,G,H,I\r\n1,2,3,4,5,6,7,8,9\r\n")
    before = state(world)
    response = map_columns(wizard, job_id, ["stage", "number", "expected", "lines_total",
                                            "owner", "created_at", "nonsense", "title", "title"])
    assert response.status_code == 422
    assert field_errors(html(response)) == {
        "col-0": ["The field “stage” cannot be filled from a file."],
        "col-1": ["The field “number” cannot be filled from a file."],
        "col-2": ["The field “expected” cannot be filled from a file."],
        "col-3": ["The field “lines_total” cannot be filled from a file."],
        "col-4": ["The field “owner” cannot be filled from a file."],
        "col-5": ["The field “created_at” cannot be filled from a file."],
        "col-6": ["There is no field “nonsense”."],
        "col-8": ["“title” is already filled from the column “H”."]}
    assert state(world) == before  # neither the job nor the remembered mappings changed
    assert wizard.get(f"/admin/import/{job_id}/preview").headers["Location"] == \
        f"/admin/import/{job_id}/map"  # not mapped: no dry run, no run
    token = csrf_of(wizard, f"/admin/import/{job_id}/map")
    assert wizard.post(f"/admin/import/{job_id}/run", data={"csrf_token": token}) \
        .status_code == 302
    assert state(world) == before
    # nothing mapped, or a version without an id, is refused too
    response = map_columns(wizard, job_id, [""] * 9)
    assert response.status_code == 422 and "Choose a field for at least one column." in \
        html(response)
    response = map_columns(wizard, job_id, ["title", "version"] + [""] * 7)
    assert field_errors(html(response)) == {
        "col-1": ["A version only counts with a record ID column."]}
    # a hand-made mapping saved through the engine is checked again when the run starts
    jobs = world.service.schema.engine["import_job"]
    with world.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            status="mapped", mapping=["title", "stage"] + [""] * 7))
    progress = run(wizard, job_id)
    assert progress["state"] == "failed" and progress["created"] == 0
    deals = world.service.schema.entities["deal"]
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deals)).scalar() == 0


# ---------------------------------------------------------------- refused files

def _word_document() -> bytes:
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    return out.getvalue()


REFUSED = [
    ("logo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 415,
     "This is not a CSV or XLSX file."),
    ("report.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\x0b<<>>", 415,
     "This is not a CSV or XLSX file."),
    ("letter.xlsx", _word_document(), 415, "This is not a CSV or XLSX file."),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, 415,
     "This is an old Excel file (.xls)."),
    ("broken.xlsx", b"PK\x03\x04 not really a zip", 415, "This is not a CSV or XLSX file."),
    ("utf16.csv", "Name\r\nA\r\n".encode("utf-16"), 415, "This is not a CSV or XLSX file."),
    ("empty.csv", b"  \r\n", 400, "The file is empty."),
    ("header.csv", b"Name,Code\r\n", 400, "The file has column names but no rows."),
]


def test_a_file_that_is_not_csv_or_xlsx_is_refused_with_a_clear_message(wizard):
    sign_in(wizard, "root")
    before = state(wizard.world)
    for name, content, status, message in REFUSED:
        response = upload(wizard, "account", name, content)
        assert response.status_code == status, name
        assert field_errors(html(response))["file"][0].startswith(message), name
    assert state(wizard.world) == before
    # in the admin's language
    wizard.post("/locale", data={"locale": "zh", "csrf_token": csrf_of(wizard, "/admin/import")})
    response = upload(wizard, "account", "old.xls", REFUSED[3][1])
    assert field_errors(html(response))["file"] == [
        "这是旧版 Excel 文件（.xls），请另存为 Excel 工作簿（.xlsx）或 CSV。"]


def test_content_decides_not_the_file_name(wizard):
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "account", "really-a-workbook.csv", xlsx_bytes([["Name"], ["A"]]))
    imports = importjobs.ImportJobs(wizard.world.service)
    root = wizard.world.users.caller(wizard.world.users.by_username("root"))
    assert imports.get(root, job_id)["format"] == "xlsx"
    assert uploaded(wizard, "account", "accounts.txt", "Name\r\nA\r\n")


def test_a_file_over_the_size_limit_is_refused_and_nothing_is_kept(wizard):
    wizard.app_.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # as app.yaml's max_body_mb: 1
    sign_in(wizard, "root")
    before = state(wizard.world)
    content = "Name\r\n" + "x" * 60 + "\r\n"
    response = upload(wizard, "account", "big.csv", content * 20000)
    assert response.status_code == 413
    assert field_errors(html(response))["file"] == [
        "The file is larger than the limit of 1 MB. Split it into smaller files."]
    assert state(wizard.world) == before
    assert 'data-max-bytes="1048576"' in html(wizard.get("/admin/import"))  # checked in JS too


def test_missing_choices_are_reported_next_to_their_fields(wizard):
    sign_in(wizard, "root")
    token = csrf_of(wizard, "/admin/import")
    response = wizard.post("/admin/import", data={"entity": "deal_line", "csrf_token": token},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert field_errors(html(response)) == {"entity": ["Choose what to import."],
                                            "file": ["Choose a file."]}


# ---------------------------------------------------------------- who may do it

def test_a_non_admin_gets_403_everywhere_and_nothing_is_written(wizard):
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "account", "accounts.csv", GOOD_AND_BAD)
    map_columns(wizard, job_id, ["name", "code", "tier", "employees", "credit_limit"])
    wizard.post("/logout", data={"csrf_token": csrf_of(wizard, "/admin/import")})
    before = state(wizard.world)

    rep = wizard.app_.test_client()
    sign_in(rep, "rep")
    token = csrf_of(rep, "/account")
    for path in ("/admin/import", f"/admin/import/{job_id}", f"/admin/import/{job_id}/map",
                 f"/admin/import/{job_id}/preview", f"/admin/import/{job_id}/progress",
                 f"/admin/import/{job_id}/rejected", "/admin/import/999/map"):
        assert rep.get(path).status_code == 403, path
    posts = [("/admin/import", {"entity": "account",
                                "file": (io.BytesIO(GOOD_AND_BAD.encode()), "a.csv")}),
             (f"/admin/import/{job_id}/map", {"col-0": "name"}),
             (f"/admin/import/{job_id}/run", {})]
    for path, data in posts:
        response = rep.post(path, data={**data, "csrf_token": token},
                            content_type="multipart/form-data")
        assert response.status_code == 403, path
    wizard.app_.config["MAX_CONTENT_LENGTH"] = 1024
    response = rep.post("/admin/import", data={
        "entity": "account", "file": (io.BytesIO(b"Name\r\n" + b"x" * 4096), "big.csv"),
        "csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 403 and "larger than" not in html(response)
    assert state(wizard.world) == before
    assert 'href="/admin/import"' not in html(rep.get("/account"))
    # signed out: the sign-in page, nothing else
    anonymous = wizard.app_.test_client()
    assert anonymous.get("/admin/import").headers["Location"].startswith("/login")


def test_an_admin_sees_only_their_own_imports(wizard):
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "account", "accounts.csv", GOOD_AND_BAD)
    boss = wizard.app_.test_client()
    sign_in(boss, "boss")
    assert boss.get(f"/admin/import/{job_id}/map").status_code == 404
    assert "accounts.csv" not in html(boss.get("/admin/import"))
    assert "accounts.csv" in html(wizard.get("/admin/import"))


# ---------------------------------------------------------------- progress

def test_progress_is_kept_in_the_database_and_a_dead_run_shows_as_interrupted(wizard):
    world = wizard.world
    sign_in(wizard, "root")
    job_id = uploaded(wizard, "account", "accounts.csv", GOOD_AND_BAD)
    map_columns(wizard, job_id, ["name", "code", "tier", "employees", "credit_limit"])
    jobs = world.service.schema.engine["import_job"]
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    with world.engine.begin() as conn:  # as if a worker elsewhere had done 3 rows
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            status="running", done_rows=3, lease_owner="elsewhere:1:x/job", lease_until=soon))
    assert wizard.get(f"/admin/import/{job_id}/progress").json == {
        "state": "running", "done": 3, "total": 4, "percent": 75, "created": 0, "updated": 0,
        "rejected": 0, "rolled_back": False}
    page = html(wizard.get(f"/admin/import/{job_id}"))
    assert 'data-progress-url="/admin/import/%d/progress"' % job_id in page
    assert '<progress id="import-bar" max="4" value="3">' in page
    with world.engine.begin() as conn:  # that worker died: its lease ran out
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            lease_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    assert wizard.get(f"/admin/import/{job_id}/progress").json["state"] == "interrupted"
    assert "stopped after 3 of 4 rows; another worker goes on from there" in \
        html(wizard.get(f"/admin/import/{job_id}"))

# ---------------------------------------------------------------- bounded files

def _xlsx(rows) -> bytes:
    import io as io_
    from openpyxl import Workbook
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io_.BytesIO()
    book.save(out)
    return out.getvalue()


def _with_dimension(content: bytes, ref: str) -> bytes:
    """The workbook with its first sheet's <dimension> claiming `ref`."""
    import io as io_
    import zipfile
    source, out = zipfile.ZipFile(io_.BytesIO(content)), io_.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="{ref}"'.encode(), data)
            target.writestr(info, data)
    return out.getvalue()


def test_a_file_too_large_to_import_is_refused_before_it_is_parsed(monkeypatch):
    from engine.records import importfiles, transfer
    from engine.records.importfiles import UploadRefused, read_upload, sniff
    small = _xlsx([["name", "code"], ["Acme", "AC-1"]])
    assert read_upload(small, sniff(small))[1] == [(2, ["Acme", "AC-1"])]
    # the sheet says it has 1.5 M rows (a 1.3 MB workbook can): refused from its dimension
    claimed = _with_dimension(small, "A1:B1500000")
    with pytest.raises(UploadRefused) as refused:
        read_upload(claimed, sniff(claimed))
    assert (refused.value.status, refused.value.extra["key"]) == (413, "table_too_large")
    assert "more than 1,000,000 rows" in refused.value.extra["params"]["detail"]
    wide = _xlsx([[f"c{i}" for i in range(600)], list(range(600))])
    with pytest.raises(UploadRefused, match="600 columns"):
        read_upload(wide, sniff(wide))
    # no dimension to trust, or a false one: the rows read are counted too (CSV as well)
    monkeypatch.setattr(transfer, "MAX_ROWS", 3)
    many = _with_dimension(_xlsx([["name"]] + [[f"n{i}"] for i in range(10)]), "A1")
    with pytest.raises(UploadRefused, match="more than 3 rows"):
        read_upload(many, sniff(many))
    with pytest.raises(UploadRefused, match="more than 3 rows"):
        read_upload(b"name\r\n" + b"".join(b"n%d\r\n" % i for i in range(10)), "csv")
    # what the zip says its parts unpack to is read before anything is unpacked
    monkeypatch.setattr(transfer, "MAX_UNPACKED_BYTES", 2000)
    with pytest.raises(UploadRefused) as refused:
        sniff(small)
    assert refused.value.status == 413 and "at most 0 MB" in str(refused.value)
    assert importfiles.sniff is sniff
