"""Browser test of the import wizard: an admin on a phone-sized screen uploads a CSV, maps its
columns, sees the rejected rows of the dry run, runs the import with its progress bar,
downloads the rejected rows, fixes them and imports that file again."""

import csv
import io
import threading
from pathlib import Path

import sqlalchemy as sa

from engine.records import importjobs
from engine.records.importfiles import REASON_COLUMN
from test_browser import browser, server, sign_in  # noqa: F401  (fixtures used below)

FILE = ("Name,Code,Employees,Notes\r\n"
        "Acme,AC-001,10,first\r\n"
        "Bolt,bad code,20,second\r\n"
        "Cedar,CE-003,-5,third\r\n"
        "Dune,DU-004,40,fourth\r\n")


def names(world) -> list[tuple]:
    table = world.service.schema.entities["account"]
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(table.c.name, table.c.code, table.c.employees).order_by(table.c.name))]


def upload(page, name: str, text: str) -> None:
    page.select_option("select[name=entity]", "account")
    page.set_input_files("input[name=file]", files=[{
        "name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}])
    page.click("form.import-upload button[type=submit]")
    page.wait_for_load_state()


def check_and_run(page) -> None:
    page.click("form.import-map button[type=submit]")
    page.wait_for_load_state()
    page.click("form.import-run button[type=submit]")
    page.wait_for_selector(".import-summary")  # the progress bar's page reloads when done


def test_import_fix_the_rejected_rows_and_import_them_again(browser, server,  # noqa: F811
                                                             monkeypatch):
    base, world = server
    world.users.create("root", "pw-root", ["admin"])
    page = browser.new_page(viewport={"width": 390, "height": 844}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "root")
    page.click("header >> text=Admin")
    page.click("nav.admin-tabs >> text=Import")
    page.wait_for_load_state()
    assert page.url.endswith("/admin/import")

    # a file that is no CSV is refused before any mapping
    page.select_option("select[name=entity]", "account")
    page.set_input_files("input[name=file]", files=[{
        "name": "photo.csv", "mimeType": "text/csv", "buffer": b"\x89PNG\r\n\x1a\n\x00\x00"}])
    page.click("form.import-upload button[type=submit]")
    page.wait_for_load_state()
    assert "This is not a CSV or XLSX file." in page.inner_text("#field-file")

    upload(page, "accounts.csv", FILE)
    assert "/map" in page.url
    assert [page.input_value(f"select[name=col-{i}]") for i in range(4)] == \
        ["name", "code", "employees", "notes"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("form.import-map button[type=submit]")
    page.wait_for_load_state()
    assert "/preview" in page.url
    assert "They would give: 2 created, 0 updated, 2 rejected." in page.inner_text("main")
    lines = page.locator("table.import-rejected td.line").all_inner_texts()
    assert lines == ["3", "4"]
    assert "employees: must be at least 0" in page.inner_text("table.import-rejected")
    assert names(world) == []  # the check wrote nothing

    # the run waits until the test has seen its progress bar; the page's script then notices
    # the end by itself and shows the summary
    release = threading.Event()
    real = importjobs.import_rows

    def held(*args, **kwargs):
        assert release.wait(30)
        return real(*args, **kwargs)
    monkeypatch.setattr(importjobs, "import_rows", held)
    page.click("form.import-run button[type=submit]")
    page.wait_for_load_state()
    bar = page.locator("progress#import-bar")
    assert bar.get_attribute("max") == "4" and bar.get_attribute("value") == "0"
    text = page.inner_text("main")  # queued until a job thread claims it, then running
    assert "Importing" in text or "Waiting for a worker" in text
    release.set()
    page.wait_for_selector(".import-summary")
    monkeypatch.setattr(importjobs, "import_rows", real)
    assert "2 created, 0 updated, 2 rejected" in page.inner_text(".import-summary")
    assert names(world) == [("Acme", "AC-001", 10), ("Dune", "DU-004", 40)]

    with page.expect_download() as caught:
        page.click("text=Download the 2 rejected rows")
    download = caught.value
    assert download.suggested_filename == "accounts-rejected.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"),
                                       newline="")))
    assert rows[0] == ["Name", "Code", "Employees", "Notes", REASON_COLUMN]
    assert [r[0] for r in rows[1:]] == ["Bolt", "Cedar"]

    # fix the two rows in the downloaded file and import it again
    rows[1][1], rows[2][2] = "BO-002", "30"
    fixed = io.StringIO()
    csv.writer(fixed, lineterminator="\r\n").writerows(rows)
    page.click("text=Import another file")
    page.wait_for_load_state()
    upload(page, "accounts-rejected.csv", fixed.getvalue())
    assert [page.input_value(f"select[name=col-{i}]") for i in range(4)] == \
        ["name", "code", "employees", "notes"]  # remembered, the reason column aside
    assert "ignored" in page.inner_text("#column-4")
    check_and_run(page)
    assert "2 created, 0 updated, 0 rejected" in page.inner_text(".import-summary")
    assert page.locator("text=Download the").count() == 0
    assert names(world) == [("Acme", "AC-001", 10), ("Bolt", "BO-002", 20),
                            ("Cedar", "CE-003", 30), ("Dune", "DU-004", 40)]
    assert errors == []
    page.close()
