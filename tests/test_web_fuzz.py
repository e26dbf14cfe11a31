"""The JSON API fuzzed from its own OpenAPI document (schemathesis): no request, however it
is crafted (wrong types, missing or extra fields, odd strings, forged cursors, bad bodies),
gets a 5xx. Bounded (a few examples per operation, generation only) so it runs in CI in
seconds; `CRM_FUZZ_EXAMPLES` asks for more when run by hand."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from conftest import World
from web import create_app

EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "6"))
SIGNED_IN: dict[str, str] = {}


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory):
    os.environ.setdefault("CRM_SECRET_KEY", "fuzz-test-key")
    world = World(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    world.users.create("admin", "pw-admin", ["admin"])
    rep = world.user("rep", "rep")
    for i in range(3):  # records to read, page through (cursors), change and delete
        world.service.create(rep, "account", {"name": f"Account {i}", "discount": "2.5"})
    app = create_app(world.registry, world.engine)
    token = app.test_client().post("/api/v1/auth/token", json={
        "username": "admin", "password": "pw-admin"}).json["token"]
    SIGNED_IN["Authorization"] = f"Bearer {token}"
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=SIGNED_IN)
    world.engine.dispose()


schema = schemathesis.pytest.from_fixture("fuzzed_api")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_no_crafted_request_gets_a_server_error(case):
    signed_out = case.path == "/auth/token" or case.path.endswith("/auth/token")
    response = case.call(headers={} if signed_out else dict(SIGNED_IN))
    assert response.status_code < 500, (case.method, case.formatted_path, case.query,
                                        case.body, response.text[:500])
