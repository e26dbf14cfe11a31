"""Files over HTTP: multipart and base64 uploads in the JSON API, attachment endpoints, safe
downloads, and the record page's file inputs and attachments panel."""

from __future__ import annotations

import base64
import io
import re

import pytest

from conftest import BARE_ROOT, World
from test_records_files import PDF, PNG, files_site
from test_web_ui import csrf_of, html, sign_in
from web import create_app

SVG = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"


@pytest.fixture
def client(database_url, tmp_path):
    world = World(database_url, site=files_site(tmp_path / "site",
                                                "app: files\nmax_body_mb: 0.05\n"),
                  root=BARE_ROOT)
    for name, role in (("admin", "admin"), ("rep", "rep"), ("rep2", "rep"), ("viewer", "viewer")):
        world.users.create(name, f"pw-{name}", [role])
    app = create_app(world.registry, world.engine)
    client = app.test_client()
    client.world = world
    yield client
    world.engine.dispose()


def auth(client, username):
    response = client.post("/api/v1/auth/token",
                           json={"username": username, "password": f"pw-{username}"})
    return {"Authorization": f"Bearer {response.json['token']}"}


def multipart(client, method, path, headers, data):
    return getattr(client, method)(path, data=data, headers=headers,
                                   content_type="multipart/form-data")


def assert_safe_download(response, content_type, name):
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert name in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_multipart_and_base64_uploads_through_the_api(client):
    rep = auth(client, "rep")
    created = multipart(client, "post", "/api/v1/contract", rep, {
        "name": "Acme", "scan": (io.BytesIO(PDF), "../合同.pdf")})
    assert created.status_code == 201, created.json
    record = created.json["data"]
    assert record["scan"] == {"name": "合同.pdf", "size": len(PDF),
                              "content_type": "application/pdf",
                              "sha256": record["scan"]["sha256"]}
    assert "secret_doc" not in record and record["notes"] is None
    download = client.get(f"/api/v1/contract/{record['id']}/files/scan", headers=rep)
    assert_safe_download(download, "application/pdf", "filename*=UTF-8''%E5%90%88%E5%90%8C.pdf")
    assert download.data == PDF
    # JSON: base64 in, and the record as read sent back keeps the file
    changed = client.patch(f"/api/v1/contract/{record['id']}", headers=rep, json={
        "version": 1, "name": "Acme 2", "scan": record["scan"],
        "notes": {"name": "page.svg", "content_base64": base64.b64encode(SVG).decode()}})
    assert changed.status_code == 200, changed.json
    assert changed.json["data"]["scan"] == record["scan"]
    svg = client.get(f"/api/v1/contract/{record['id']}/files/notes", headers=rep)
    assert_safe_download(svg, "text/plain; charset=utf-8", "page.svg")  # never image/svg+xml
    replaced = multipart(client, "patch", f"/api/v1/contract/{record['id']}", rep, {
        "version": "2", "scan": (io.BytesIO(PNG), "p.png"), "notes": ""})
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["data"]["scan"]["content_type"] == "image/png"
    assert replaced.json["data"]["notes"] is None
    history = client.get(f"/api/v1/contract/{record['id']}/history", headers=rep).json["data"]
    assert history[0]["changes"]["scan"][1]["name"] == "p.png"
    assert history[0]["changes"]["notes"] == [history[1]["changes"]["notes"][1], None]


def test_refused_uploads_name_the_field_and_write_nothing(client):
    rep = auth(client, "rep")
    refused = multipart(client, "post", "/api/v1/contract", rep, {
        "name": "Acme", "scan": (io.BytesIO(b"just text"), "fake.pdf"),
        "notes": (io.BytesIO(b""), "empty.txt")})
    assert refused.status_code == 422
    assert refused.json["error"]["fields"] == {
        "scan": ["is a text/plain file; allowed: application/pdf, image/*"],
        "notes": ["is an empty file"]}
    two = multipart(client, "post", "/api/v1/contract", rep, {
        "name": "Acme", "scan": [(io.BytesIO(PDF), "a.pdf"), (io.BytesIO(PDF), "b.pdf")]})
    assert two.status_code == 400 and two.json["error"]["fields"] == {"scan": ["send one file"]}
    hidden = multipart(client, "post", "/api/v1/contract", rep, {
        "name": "Acme", "secret_doc": (io.BytesIO(PDF), "s.pdf")})
    assert hidden.status_code == 422 and list(hidden.json["error"]["fields"]) == ["secret_doc"]
    too_big = multipart(client, "post", "/api/v1/contract", rep, {
        "name": "Acme", "notes": (io.BytesIO(b"x" * 60_000), "big.txt")})
    assert too_big.status_code == 413
    assert too_big.json["error"]["code"] == "payload_too_large"
    assert client.get("/api/v1/contract", headers=rep).json["total"] == 0
    assert not list(client.world.service.files.keys())
    text_body = client.post("/api/v1/contract", headers=rep, data="name=x",
                            content_type="text/plain")
    assert text_body.status_code == 415


def test_field_downloads_check_the_record_and_the_field(client):
    rep, rep2, admin = auth(client, "rep"), auth(client, "rep2"), auth(client, "admin")
    record = multipart(client, "post", "/api/v1/contract", rep, {
        "name": "Acme", "scan": (io.BytesIO(PDF), "a.pdf")}).json["data"]
    multipart(client, "patch", f"/api/v1/contract/{record['id']}", admin,
              {"version": "1", "secret_doc": (io.BytesIO(b"secret"), "s.txt")})
    base = f"/api/v1/contract/{record['id']}/files"
    assert client.get(f"{base}/secret_doc", headers=admin).data == b"secret"
    for headers, path in ((rep, "secret_doc"), (rep2, "scan"), (rep, "notes"),
                          (rep, "name"), (rep, "nope")):
        response = client.get(f"{base}/{path}", headers=headers)
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert client.get(f"{base}/scan").status_code == 401


def test_attachment_endpoints(client):
    rep, viewer, rep2 = auth(client, "rep"), auth(client, "viewer"), auth(client, "rep2")
    record = client.post("/api/v1/contract", headers=rep, json={"name": "A"}).json["data"]
    base = f"/api/v1/contract/{record['id']}/attachments"
    added = multipart(client, "post", base, rep, {"file": (io.BytesIO(b"<html>hi</html>"),
                                                           "page.html")})
    assert added.status_code == 201, added.json
    attachment = added.json["data"]
    assert (attachment["name"], attachment["content_type"]) == ("page.html", "text/plain")
    via_json = client.post(base, headers=rep, json={
        "name": "p.png", "content_base64": base64.b64encode(PNG).decode()})
    assert via_json.status_code == 201
    listed = client.get(base, headers=viewer)
    assert [a["name"] for a in listed.json["data"]] == ["page.html", "p.png"]
    download = client.get(f"{base}/{attachment['id']}", headers=viewer)
    assert_safe_download(download, "text/plain; charset=utf-8", "page.html")
    assert download.data == b"<html>hi</html>"
    assert multipart(client, "post", base, viewer, {
        "file": (io.BytesIO(b"x"), "x.txt")}).status_code == 403
    assert client.delete(f"{base}/{attachment['id']}", headers=viewer).status_code == 403
    assert client.get(base, headers=rep2).status_code == 404
    missing = multipart(client, "post", base, rep, {"other": (io.BytesIO(b"x"), "x.txt")})
    assert missing.status_code == 400 and missing.json["error"]["fields"] == {
        "file": ["is required"]}
    empty = multipart(client, "post", base, rep, {"file": (io.BytesIO(b""), "e.txt")})
    assert empty.status_code == 422 and empty.json["error"]["fields"] == {
        "file": ["is an empty file"]}
    assert client.delete(f"{base}/{attachment['id']}", headers=rep).status_code == 204
    assert client.get(f"{base}/{attachment['id']}", headers=rep).status_code == 404
    assert client.delete(f"{base}/{attachment['id']}", headers=rep).status_code == 404
    history = client.get(f"/api/v1/contract/{record['id']}/history", headers=rep).json["data"]
    assert [e["action"] for e in history] == ["detach", "attach", "attach", "create"]
    assert client.get("/api/v1/contract/999/attachments", headers=rep).status_code == 404


def test_openapi_and_meta_describe_files(client):
    from openapi_spec_validator import validate
    admin = auth(client, "admin")
    document = client.get("/api/v1/openapi.json", headers=admin).json
    validate(document)
    assert "/contract/{id}/attachments/{attachment}" in document["paths"]
    assert "/contract/{id}/files/scan" in document["paths"]
    fields = {f["name"]: f for f in client.get("/api/v1/meta/contract",
                                               headers=admin).json["fields"]}
    assert (fields["scan"]["type"], fields["scan"]["max_mb"], fields["scan"]["accept"]) == (
        "file", 0.001, ["application/pdf", "image/*"])


# ---------------------------------------------------------------- the UI


def test_record_forms_upload_keep_and_remove_files(client):
    sign_in(client, "rep")
    form = html(client.get("/contract/new"))
    assert 'enctype="multipart/form-data"' in form
    assert 'type="file" accept="application/pdf,image/*"' in form
    assert 'name="secret_doc"' not in form
    created = client.post("/contract/new", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, "/contract/new"), "name": "Acme",
        "scan": (io.BytesIO(PDF), "scan.pdf"), "notes": (io.BytesIO(b""), "")})
    assert created.status_code == 302, html(created)
    path = created.headers["Location"]
    page = html(client.get(path))
    link = re.search(r'<a href="([^"]+/files/scan)" download>scan.pdf</a>', page)
    assert link, page
    assert client.get(link.group(1)).data == PDF
    assert "Current file: scan.pdf" in page
    # saving the form without choosing a file keeps the file
    saved = client.post(path, content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, path), "version": "1", "name": "Acme 2"})
    assert saved.status_code == 302
    refused = client.post(path, content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, path), "version": "2",
        "scan": (io.BytesIO(b"text"), "x.pdf")})
    assert refused.status_code == 422
    assert "is a text/plain file; allowed: application/pdf, image/*" in html(refused)
    removed = client.post(path, content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, path), "version": "2", "name": "Acme 2",
        "scan__remove": "true"})
    assert removed.status_code == 302
    record = client.world.service.get(client.world.user("admin", "admin"), "contract",
                                      int(path.rsplit("/", 1)[1]))
    assert (record["name"], record["scan"], record["version"]) == ("Acme 2", None, 3)


def test_record_page_attachments_panel(client):
    rep = auth(client, "rep")
    record = client.post("/api/v1/contract", headers=rep, json={"name": "A"}).json["data"]
    path = f"/contract/{record['id']}"
    sign_in(client, "rep")
    assert "No attachments yet." in html(client.get(path))
    refused = client.post(f"{path}/attachments", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, path), "file": (io.BytesIO(b""), "e.txt")})
    assert refused.status_code == 422
    assert "The file was not attached: is an empty file" in html(refused)
    added = client.post(f"{path}/attachments", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, path), "file": (io.BytesIO(b"quote"), "报价.txt")})
    assert added.status_code == 302 and added.headers["Location"].endswith("#attachments")
    page = html(client.get(path))
    assert "Attached 报价.txt." in page
    link = re.search(r'<a href="(/contract/\d+/attachments/(\d+))" download>报价.txt</a>', page)
    assert link, page
    assert client.get(link.group(1)).data == b"quote"
    assert "attached a file" in page  # the history names the action
    deleted = client.post(f"{link.group(1)}/delete", data={"csrf_token": csrf_of(client, path)})
    assert deleted.status_code == 302
    page = html(client.get(path))
    assert "The attachment was deleted." in page and "deleted an attachment" in page
    assert client.get(link.group(1)).status_code == 404
    client.post("/logout", data={"csrf_token": csrf_of(client, path)})
    sign_in(client, "viewer")
    viewer_page = html(client.get(path))
    assert 'class="attach-form"' not in viewer_page  # may read, may not update
    assert client.post(f"{path}/attachments", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(client, path),
        "file": (io.BytesIO(b"x"), "x.txt")}).status_code == 403
