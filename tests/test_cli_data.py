"""The data commands: migrate, user add, seed, import and export (CLI.md)."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from conftest import BARE_ROOT, RECORDS_SITE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def crm(database_url, tmp_path):
    def run(*args, stdin=None):
        env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(RECORDS_SITE),
                   CRM_DATABASE_URL=database_url)
        return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120,
                              stdin=subprocess.DEVNULL if stdin is None else stdin)
    return run


def test_migrate_plan_apply_and_nothing_to_do(crm):
    plan = crm("migrate", "--plan")
    assert plan.returncode == 0 and "create table e_account for entity account" in plan.stdout
    assert crm("migrate", "--plan").stdout == plan.stdout  # --plan changed nothing
    applied = crm("migrate")
    assert applied.returncode == 0 and "applied" in applied.stdout
    again = crm("migrate")
    assert again.returncode == 0 and again.stdout.strip() == "nothing to do"


def test_commands_refuse_an_unmigrated_database(crm):
    result = crm("seed")
    assert result.returncode == 1 and "crm migrate" in result.stderr


def test_user_add(crm):
    crm("migrate")
    ok = crm("user", "add", "alice", "--role", "rep", "--password", "s3cret")
    assert ok.returncode == 0, ok.stderr
    assert crm("user", "add", "alice", "--role", "rep", "--password", "x").returncode == 1
    bad_role = crm("user", "add", "bob", "--role", "reps", "--password", "x")
    assert bad_role.returncode == 1 and "did you mean 'rep'" in bad_role.stderr
    no_tty = crm("user", "add", "carol", "--role", "rep")
    assert no_tty.returncode == 1 and "password" in no_tty.stderr


def test_seed_loads_in_reference_order_once(crm):
    crm("migrate")
    first = crm("seed")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["account: 2 records", "deal: 1 records"]
    assert crm("seed").stdout.splitlines() == ["account: has records already, skipped",
                                               "deal: has records already, skipped"]
    exported = crm("export", "deal")
    rows = list(csv.DictReader(io.StringIO(exported.stdout.lstrip("\ufeff"))))
    assert rows[0]["stage"] == "won" and rows[0]["amount"] == "1200.50"


def test_export_neutralises_formulas_and_round_trips(crm, tmp_path):
    crm("migrate")
    crm("seed")
    source = tmp_path / "in.csv"
    source.write_text("name,notes,rating\n=HYPERLINK(\"x\"),\" +cmd\",-5\n"
                      "\"@SUM(A1)\",\"\tx\",10\n", encoding="utf-8")
    imported = crm("import", "account", str(source))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    out = tmp_path / "out.csv"
    assert crm("export", "account", "-o", str(out)).returncode == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:5] == ["id", "version", "owner", "created_at", "updated_at"]
    by_name = {r[header.index("name")]: r for r in rows[1:]}
    assert "'=HYPERLINK(\"x\")" in by_name
    assert by_name["'=HYPERLINK(\"x\")"][header.index("notes")] == "' +cmd"
    assert by_name["'=HYPERLINK(\"x\")"][header.index("rating")] == "-5.0"  # a number
    assert "'@SUM(A1)" in by_name
    # edit the exported file and import it back: rows with an id update their record
    name_col = header.index("name")
    for row in rows[1:]:
        if row[name_col] == "Northwind":
            row[name_col] = "Northwind Traders"
    edited = tmp_path / "edited.csv"
    with edited.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    back = crm("import", "account", str(edited))
    assert back.returncode == 0, back.stdout
    assert "0 created, 4 updated, 0 rejected" in back.stdout


def test_xlsx_export_has_no_formulas(crm, tmp_path):
    crm("migrate")
    source = tmp_path / "in.csv"
    source.write_text("name\n=1+1\n", encoding="utf-8")
    crm("import", "account", str(source))
    out = tmp_path / "out.xlsx"
    assert crm("export", "account", "--format", "xlsx", "-o", str(out)).returncode == 0
    sheet = load_workbook(out).active
    cell = sheet.cell(2, [c.value for c in sheet[1]].index("name") + 1)
    assert cell.data_type == "s" and cell.value == "'=1+1"


def test_import_reports_rejected_rows_by_line_and_keeps_valid_ones(crm, tmp_path):
    crm("migrate")
    source = tmp_path / "accounts.csv"
    source.write_text("name,notes,employees,客户\n"
                      "Good one,,5,\n"
                      "Bad,\"two\nlines\",-1,\n"
                      ",,,\n"
                      "Another good,,7,\n"
                      ",note,3,\n", encoding="utf-8")
    # 客户 is the Chinese label of nothing in account: the file is refused as a whole
    refused = crm("import", "account", str(source))
    assert refused.returncode == 1 and "column '客户'" in refused.stderr
    source.write_text("name,notes,employees\n"
                      "Good one,,5\n"
                      "Bad,\"two\nlines\",-1\n"
                      "Another good,,7\n"
                      ",note,3\n", encoding="utf-8")
    result = crm("import", "account", str(source))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith(":3: rejected: employees: must be at least 0")
    assert lines[1].endswith(":6: rejected: name: is required")
    assert lines[-1] == "2 created, 0 updated, 2 rejected"
    atomic = crm("import", "account", str(source), "--all-or-nothing")
    assert atomic.returncode == 1 and "nothing imported" in atomic.stdout
    exported = csv.DictReader(io.StringIO(crm("export", "account").stdout.lstrip("\ufeff")))
    assert [r["name"] for r in exported].count("Good one") == 1  # the atomic run added nothing


def test_import_gbk_and_xlsx_with_labels(crm, tmp_path):
    crm("migrate")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("name,tier\n上海电气,a\n".encode("gbk"))
    result = crm("import", "account", str(gbk))
    assert result.returncode == 1 and "tax_id: is required" in result.stdout  # tier a needs it
    gbk.write_bytes("name,tier\n上海电气,b\n".encode("gbk"))
    assert crm("import", "account", str(gbk)).returncode == 0
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "employees"])
    sheet.append(["广州贸易", 12])
    sheet.append(["", 3])
    path = tmp_path / "in.xlsx"
    book.save(path)
    result = crm("import", "account", str(path))
    assert result.returncode == 1 and ":3: rejected: name: is required" in result.stdout
    assert "上海电气" in crm("export", "account").stdout


def test_unknown_entity_exits_1(crm):
    crm("migrate")
    assert crm("export", "nothing").returncode == 1
    assert crm("import", "deal_line", __file__).returncode == 1


def test_seed_files_are_chosen_before_automations_create_records(tmp_path, database_url):
    """An automation that creates records of a later entity does not make its seed file be
    skipped: which entities to seed is decided before anything is created."""
    from conftest import World, write_site
    from engine.records.seeding import load_seeds
    site = write_site(tmp_path / "site", {
        "entities/account.yaml": "entity: account\nfields: {name: {type: string}}\n",
        "entities/task.yaml": """
            entity: task
            fields:
              subject: {type: string}
              account: {type: reference, to: account}
            """,
        "automations/welcome.yaml": """
            automation: welcome
            entity: account
            when: {event: created}
            do:
              - create: {entity: task, values: {subject: "'Welcome ' + name", account: "id"}}
            """,
        "seed/accounts.yaml": "entity: account\nrecords:\n  - {name: Acme}\n",
        "seed/tasks.yaml": "entity: task\nrecords:\n  - {subject: Visit, account: Acme}\n",
    })
    world = World(database_url, site=site)
    try:
        assert list(load_seeds(world.service, world.users)) == ["account: 1 records",
                                                                 "task: 1 records"]
        tasks = world.service.list(world.user("admin1", "admin"), "task").data
        assert sorted(t["subject"] for t in tasks) == ["Visit", "Welcome Acme"]
        assert list(load_seeds(world.service, world.users)) == [
            "account: has records already, skipped", "task: has records already, skipped"]
    finally:
        world.engine.dispose()
