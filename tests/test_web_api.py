"""The JSON API (API.md) over the record service, with the Flask test client."""

import json

import pytest

from conftest import FIXTURES, World
from web import create_app

PROCESS_SITE = FIXTURES / "sites" / "process"


@pytest.fixture
def api(database_url):
    world = World(database_url)
    world.users.create("admin", "pw-admin", ["admin"])
    world.users.create("rep", "pw-rep", ["rep"])
    world.users.create("rep2", "pw-rep2", ["rep"])
    app = create_app(world.registry, world.engine)
    client = app.test_client()
    client.world = world
    yield client
    world.engine.dispose()


def token(client, username, password=None):
    response = client.post("/api/v1/auth/token",
                           json={"username": username, "password": password or f"pw-{username}"})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_every_call_needs_a_valid_token(api):
    for method, path in [("get", "/api/v1/account"), ("get", "/api/v1/me"),
                         ("get", "/api/v1/meta"), ("get", "/api/v1/openapi.json"),
                         ("post", "/api/v1/account"), ("get", "/api/v1/account/1")]:
        response = getattr(api, method)(path)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"
    bad = api.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert api.get("/api/v1/no/such/path").status_code == 401  # not even its absence is told
    assert api.put("/api/v1/account/1", json={}).status_code == 401


def test_sign_in_me_revoke_and_rate_limit(api):
    assert api.post("/api/v1/auth/token", json={"username": "rep", "password": "x"}
                    ).status_code == 401
    headers = token(api, "rep")
    me = api.get("/api/v1/me", headers=headers).json
    assert me["username"] == "rep" and me["roles"] == ["rep"] and me["locale"] == "en"
    assert [u["username"] for u in api.get("/api/v1/users", headers=headers).json["data"]] == [
        "admin", "rep", "rep2"]
    assert api.delete("/api/v1/auth/token", headers=headers).status_code == 204
    assert api.get("/api/v1/me", headers=headers).status_code == 401
    for _ in range(10):  # one username from one address: limited
        assert api.post("/api/v1/auth/token", json={"username": "rep2", "password": "bad"},
                        environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 401
    limited = api.post("/api/v1/auth/token", json={"username": "rep2", "password": "pw-rep2"},
                       environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    # ... but that cannot lock the user out: from their own address they still sign in
    assert api.post("/api/v1/auth/token", json={"username": "rep2", "password": "pw-rep2"},
                    environ_base={"REMOTE_ADDR": "10.0.1.1"}).status_code == 200
    for i in range(30):  # one address, many usernames: limited per address
        api.post("/api/v1/auth/token", json={"username": f"guess{i}", "password": "x"},
                 environ_base={"REMOTE_ADDR": "10.9.9.9"})
    blocked = api.post("/api/v1/auth/token", json={"username": "admin", "password": "pw-admin"},
                       environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert blocked.status_code == 429


def test_an_unknown_username_costs_one_password_check_like_a_known_one(api, monkeypatch):
    import hashlib

    import engine.records.users as users
    users.dummy_hash()  # made once per process, before any attempt is timed
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(users.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    for name in ("rep", "nobody-here"):
        calls.clear()
        assert api.post("/api/v1/auth/token", json={"username": name, "password": "bad"},
                        environ_base={"REMOTE_ADDR": "10.7.7.7"}).status_code == 401
        assert len(calls) == 1, name


def test_create_read_update_delete_with_versions(api):
    headers = token(api, "rep")
    created = api.post("/api/v1/account", json={"name": "Acme", "credit_limit": 10},
                       headers=headers)
    assert created.status_code == 422
    assert created.json["error"]["fields"] == {"credit_limit": ["is read-only"]}
    created = api.post("/api/v1/account", json={"name": "Acme", "discount": "12.5",
                                                "founded": "2001-02-03"}, headers=headers)
    assert created.status_code == 201
    record = created.json["data"]
    assert record["discount"] == "12.50" and record["founded"] == "2001-02-03"
    assert record["created_at"].endswith("Z") and record["version"] == 1
    url = f"/api/v1/account/{record['id']}"
    assert api.patch(url, json={"name": "B"}, headers=headers).status_code == 428
    changed = api.patch(url, json={"name": "B"}, headers={**headers, "If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json["data"]["version"] == 2
    stale = api.patch(url, json={"name": "C", "version": 1}, headers=headers)
    assert stale.status_code == 409 and stale.json["error"]["current_version"] == 2
    history = api.get(url + "/history", headers=headers).json["data"]
    assert [h["action"] for h in history] == ["update", "create"]
    assert api.get(url, headers=token(api, "rep2")).status_code == 404
    assert api.delete(url, json={"version": 2}, headers=headers).status_code == 204
    assert api.get(url, headers=headers).status_code == 404


def test_listing_and_bad_parameters(api):
    headers = token(api, "admin")
    for name in ("Alpha", "Beta", "Gamma"):
        api.post("/api/v1/account", json={"name": name}, headers=headers)
    page = api.get("/api/v1/account?sort=-name&limit=2", headers=headers).json
    assert [r["name"] for r in page["data"]] == ["Gamma", "Beta"] and page["total"] == 3
    rest = api.get(f"/api/v1/account?sort=-name&limit=2&cursor={page['next_cursor']}",
                   headers=headers).json
    assert [r["name"] for r in rest["data"]] == ["Alpha"] and rest["next_cursor"] is None
    bad = api.get("/api/v1/account?nope=1", headers=headers)
    assert bad.status_code == 400 and list(bad.json["error"]["fields"]) == ["nope"]
    assert api.get("/api/v1/account?limit=501", headers=headers).status_code == 400


def test_error_shapes_for_http_mistakes(api):
    headers = token(api, "admin")
    malformed = api.post("/api/v1/account", data="{not json", headers={
        **headers, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json["error"]["code"] == "bad_request"
    text = api.post("/api/v1/account", data="name=x", headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert text.status_code == 415
    assert api.put("/api/v1/account/1", json={}, headers=headers).status_code == 405
    missing = api.get("/api/v1/nothing/at/all", headers=headers)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert api.get("/api/v1/deal_line", headers=headers).status_code == 404  # child entity
    huge = api.post("/api/v1/account", data=json.dumps({"name": "x" * (11 * 1024 * 1024)}),
                    headers={**headers, "Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.json["error"]["code"] == "payload_too_large"
    response = api.get("/api/v1/me", headers=headers)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_messages_follow_accept_language(api):
    headers = {**token(api, "admin"), "Accept-Language": "zh-CN,zh;q=0.9"}
    response = api.post("/api/v1/account", json={}, headers=headers)
    assert response.json["error"]["fields"] == {"name": ["必填"]}


def test_meta_and_openapi(api):
    headers = token(api, "rep")
    meta = api.get("/api/v1/meta", headers=headers).json
    assert {e["name"] for e in meta["entities"]} == {"account", "deal", "product", "note"}
    account = api.get("/api/v1/meta/account", headers=headers).json
    assert account["can"] == {"read": True, "create": True, "update": True, "delete": True}
    names = [f["name"] for f in account["fields"]]
    assert "secret" not in names and "credit_limit" in names
    assert next(f for f in account["fields"] if f["name"] == "credit_limit")["read_only"]
    doc = api.get("/api/v1/openapi.json", headers=headers).json
    assert doc["openapi"].startswith("3.") and "/account/{id}" in doc["paths"]
    from openapi_spec_validator import validate
    validate(doc)


def test_review_edge_cases(api):
    headers = token(api, "admin")
    assert api.get("/api/v1/account/99999999999999999999999", headers=headers).status_code == 404
    nan = api.post("/api/v1/account", data='{"name": NaN}',
                   headers={**headers, "Content-Type": "application/json"})
    assert nan.status_code == 400
    far = api.post("/api/v1/account", json={"name": "x",
                                            "last_contact": "0001-01-01T00:00:00+01:00"},
                   headers=headers)
    assert far.status_code == 422 and list(far.json["error"]["fields"]) == ["last_contact"]
    record = api.post("/api/v1/account", json={"name": "Self"}, headers=headers).json["data"]
    url = f"/api/v1/account/{record['id']}"
    mine = api.patch(url, json={"parent": record["id"], "version": 1.0}, headers=headers)
    assert mine.status_code == 200
    assert api.patch(url, json={"name": "y"}, headers={**headers, "If-Match": "*"}
                     ).status_code == 428
    assert api.delete(url, json={"version": 2}, headers=headers).status_code == 204


def test_username_spacing_does_not_escape_the_limit(api):
    for _ in range(10):
        api.post("/api/v1/auth/token", json={"username": "rep", "password": "bad"},
                 environ_base={"REMOTE_ADDR": "10.1.0.1"})
    sneaky = api.post("/api/v1/auth/token", json={"username": " REP ", "password": "pw-rep"},
                      environ_base={"REMOTE_ADDR": "10.1.0.1"})
    assert sneaky.status_code == 429


def _forged(cursor: str, **changes) -> str:
    import base64
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload.update(changes)
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_crafted_cursors_and_bodies_are_400s_naming_what_is_wrong(api):
    headers = token(api, "rep")
    for i in range(3):
        assert api.post("/api/v1/account", json={"name": f"A{i}", "founded": "2001-02-03",
                                                 "discount": "1.5"}, headers=headers
                        ).status_code == 201
    for sort in ("name", "-created_at", "founded", "discount", None):
        query = {"limit": 1, **({"sort": sort} if sort else {})}
        cursor = api.get("/api/v1/account", query_string=query, headers=headers).json[
            "next_cursor"]
        forged = [_forged(cursor, v=[value]) for value in (
            "not a date", [1], {"a": 1}, 10 ** 30, -1e308, True, "NaN", "1e999", None, "x" * 9)]
        forged += [_forged(cursor, id=value) for value in (10 ** 30, "1", 1.5, None, [1], True)]
        forged += [_forged(cursor, v="ab"), _forged(cursor, v={"a": 1}), "!!!", "e30"]
        for bad in forged:
            response = api.get("/api/v1/account", query_string={**query, "cursor": bad},
                               headers=headers)
            assert response.status_code in (200, 400), (sort, bad, response.json)
            if response.status_code == 400:
                assert list(response.json["error"]["fields"]) == ["cursor"]
    deep = "[" * 100_000 + "]" * 100_000
    for path, extra in (("/api/v1/auth/token", {}), ("/api/v1/account", headers)):
        response = api.post(path, data=deep, content_type="application/json", headers=extra)
        assert response.status_code == 400 and \
            response.json["error"]["message"] == "the body is nested too deeply"
