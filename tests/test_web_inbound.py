"""Inbound webhooks: signed, idempotent record changes from another system, and their checks."""

import hashlib
import hmac
import json
import time

import pytest
import sqlalchemy as sa

from conftest import BARE_ROOT, World, problems_of, write_site
from engine.records.access import SYSTEM
from web import create_app

SECRET = "pay-s3cret"
SHOP_SECRET = "shop-s3cret"

SITE_FILES = {
    "app.yaml": "app: inbound_test\nmax_body_mb: 0.01\n",
    "entities/sales_order.yaml": """
        entity: sales_order
        fields:
          number: {type: string, required: true, unique: true}
          customer_name: {type: string}
          payment_status: {type: enum, options: [pending, paid, failed], read_only: true}
          paid_amount: {type: money, min: 0}
          total: {type: money}
        """,
    "workflows/order_flow.yaml": """
        workflow: order_flow
        entity: sales_order
        field: state
        initial: open
        states: {open: {}, paid: {}, closed: {final: true}}
        transitions:
          pay: {from: open, to: paid, require: [paid_amount]}
          close: {from: paid, to: closed}
        """,
    "inbound/payments.yaml": """
        inbound: payments
        label: Payment gateway
        secret_env: CRM_TEST_PAY_SECRET
        signature: {header: X-Pay-Signature, timestamp_header: X-Pay-Timestamp, tolerance: 300}
        event_id: $.event.id
        entity: sales_order
        match: {number: $.data.order_no}
        set: {payment_status: $.data.status, paid_amount: $.data.amount}
        transition: {name: pay, when: {"$.data.status": paid}}
        """,
    "inbound/shop.yaml": """
        inbound: shop
        secret_env: CRM_TEST_SHOP_SECRET
        event_id: {header: X-Event-Id}
        entity: sales_order
        match: {number: order_no}
        set: {customer_name: customer, total: total, payment_status: status}
        create_if_missing: true
        """,
}


@pytest.fixture
def hook(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("CRM_TEST_PAY_SECRET", SECRET)
    monkeypatch.setenv("CRM_TEST_SHOP_SECRET", SHOP_SECRET)
    site = write_site(tmp_path / "site", SITE_FILES)
    world = World(database_url, site=site, root=BARE_ROOT)
    client = create_app(world.registry, world.engine).test_client()
    client.world = world
    yield client
    world.engine.dispose()


def payment(event_id="evt_1", order_no="SO-1", status="paid", amount="120.50"):
    return {"event": {"id": event_id, "type": "payment.updated"},
            "data": {"order_no": order_no, "status": status, "amount": amount}}


def send(client, body, secret=SECRET, stamp=None, signature=None, prefix="sha256="):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time())) if stamp is None else stamp
    if signature is None:
        signature = prefix + hmac.new(secret.encode(), stamp.encode() + b"." + raw,
                                      hashlib.sha256).hexdigest()
    headers = {"X-Pay-Timestamp": stamp, "Content-Type": "application/json"}
    if signature:
        headers["X-Pay-Signature"] = signature
    return client.post("/api/v1/inbound/payments", data=raw, headers=headers)


def send_shop(client, body, event_id, secret=SHOP_SECRET):
    raw = json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/api/v1/inbound/shop", data=raw, headers={
        "X-Signature": digest, "X-Event-Id": event_id, "Content-Type": "application/json"})


def order(client, number="SO-1", **values):
    return client.world.service.create(SYSTEM, "sales_order", {"number": number, **values})


def current(client, record_id):
    return client.world.service.get(SYSTEM, "sales_order", record_id)


def events(client):
    with client.world.engine.connect() as conn:
        return conn.execute(sa.text("select source, event_id, record_id from crm_inbound_event "
                                    "order by id")).all()


def history(client, record_id):
    entries, _ = client.world.service.history(SYSTEM, "sales_order", record_id)
    return [(e["action"], e["user"], e["changes"]) for e in entries]


def test_signed_event_updates_the_record_fires_the_transition_and_is_audited(hook):
    record = order(hook)
    response = send(hook, payment())
    assert response.status_code == 200, response.json
    assert response.json == {"data": {
        "source": "payments", "event_id": "evt_1", "entity": "sales_order",
        "id": record["id"], "action": "updated", "transition": "pay", "replayed": False}}
    now = current(hook, record["id"])
    assert (now["payment_status"], str(now["paid_amount"]), now["state"], now["version"]) == \
        ("paid", "120.50", "paid", 3)
    assert history(hook, record["id"]) == [
        ("transition:pay", None, {"state": ["open", "paid"]}),
        ("inbound:payments", None, {"payment_status": [None, "paid"],
                                    "paid_amount": [None, "120.50"]}),
        ("create", None, {"number": [None, "SO-1"], "state": [None, "open"]}),
    ]
    assert [tuple(e) for e in events(hook)] == [("payments", "evt_1", record["id"])]


def test_a_signature_without_the_prefix_is_accepted_and_the_transition_may_not_apply(hook):
    record = order(hook)
    response = send(hook, payment(status="failed", amount=None), prefix="")
    assert response.status_code == 200, response.json
    assert response.json["data"]["transition"] is None  # `when` is not met
    now = current(hook, record["id"])
    assert (now["payment_status"], now["state"]) == ("failed", "open")


@pytest.mark.parametrize("how", ["wrong secret", "missing", "garbage", "other body"])
def test_a_bad_or_missing_signature_is_401_and_writes_nothing(hook, how):
    record = order(hook)
    body = payment()
    if how == "wrong secret":
        response = send(hook, body, secret="guess")
    elif how == "missing":
        response = send(hook, body, signature="")
    elif how == "garbage":
        response = send(hook, body, signature="sha256=ünicode-not-hex")
    else:  # a signature of another body
        stamp = str(int(time.time()))
        other = hmac.new(SECRET.encode(), stamp.encode() + b"." + b"{}",
                         hashlib.sha256).hexdigest()
        response = send(hook, body, stamp=stamp, signature=other)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert current(hook, record["id"])["version"] == 1
    assert events(hook) == []


def test_a_stale_or_tampered_timestamp_is_refused(hook):
    record = order(hook)
    old = str(int(time.time()) - 301)
    stale = send(hook, payment(), stamp=old)
    assert stale.status_code == 401 and "X-Pay-Timestamp" in stale.json["error"]["message"]
    # a captured request replayed with a fresh timestamp: the signature covered the old one
    raw = json.dumps(payment()).encode()
    captured = "sha256=" + hmac.new(SECRET.encode(), old.encode() + b"." + raw,
                                    hashlib.sha256).hexdigest()
    assert send(hook, raw, stamp=str(int(time.time())), signature=captured).status_code == 401
    assert send(hook, raw, stamp="", signature=captured).status_code == 401
    assert current(hook, record["id"])["version"] == 1 and events(hook) == []


def test_a_repeated_event_is_answered_with_the_first_outcome_and_writes_nothing(hook):
    record = order(hook)
    first = send(hook, payment())
    assert first.status_code == 200
    # the same event id again, even with other values: nothing is applied twice
    again = send(hook, payment(amount="999.00"))
    assert again.status_code == 200
    assert again.json["data"] == {**first.json["data"], "replayed": True}
    now = current(hook, record["id"])
    assert (str(now["paid_amount"]), now["version"]) == ("120.50", 3)
    assert len(events(hook)) == 1
    # a new event id is a new event; `pay` is no longer possible from `paid`: skipped
    later = send(hook, payment(event_id="evt_2", amount="130.00"))
    assert later.status_code == 200
    assert later.json["data"]["transition"] is None and later.json["data"]["action"] == "updated"
    assert str(current(hook, record["id"])["paid_amount"]) == "130.00"


def test_an_event_that_changes_nothing_writes_no_audit_entry(hook):
    record = order(hook, paid_amount="10.00")
    assert send(hook, payment(status="failed", amount="10.00")).status_code == 200
    assert send(hook, payment(event_id="evt_2", status="failed", amount="10.00")
                ).json["data"]["action"] == "unchanged"
    assert [a for a, _, _ in history(hook, record["id"])] == ["inbound:payments", "create"]


def test_unknown_source_is_404_without_a_token(hook):
    response = hook.post("/api/v1/inbound/nosuch", data=b"{}",
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    # only the inbound path is public: everything else still needs a token
    assert hook.post("/api/v1/inbound", json={}).status_code == 401
    assert hook.post("/api/v1/inbound/payments/1", json={}).status_code == 401
    assert hook.get("/api/v1/inbound/payments").status_code == 401


def test_record_not_found_is_404_and_not_marked_processed(hook):
    response = send(hook, payment(order_no="SO-404"))
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert "SO-404" in response.json["error"]["message"]
    assert events(hook) == []
    record = order(hook, number="SO-404")  # the order arrives; the sender retries
    retry = send(hook, payment(order_no="SO-404"))
    assert retry.status_code == 200 and retry.json["data"]["id"] == record["id"]


def test_create_if_missing_creates_the_record(hook):
    body = {"order_no": "WEB-7", "customer": "Li Na", "total": 88, "status": "pending"}
    response = send_shop(hook, body, "shop-1")
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["action"], data["event_id"]) == ("created", "shop-1")
    record = current(hook, data["id"])
    assert (record["number"], record["customer_name"], str(record["total"]),
            record["payment_status"], record["state"], record["owner"]) == (
        "WEB-7", "Li Na", "88.00", "pending", "open", None)
    # the read-only field is the sender's to set: stored after creation, named after it
    assert [(a, u) for a, u, _ in history(hook, data["id"])] == [
        ("inbound:shop", None), ("create", None)]
    # the next event finds the record by its number
    updated = send_shop(hook, {**body, "customer": "Li Na Ltd"}, "shop-2")
    assert updated.json["data"]["action"] == "updated"
    assert updated.json["data"]["id"] == data["id"]
    assert send_shop(hook, body, "shop-3", secret="nope").status_code == 401


def test_an_invalid_value_is_422_naming_the_field_and_the_sender_may_retry(hook):
    record = order(hook)
    bad = send(hook, payment(amount="-5"))
    assert bad.status_code == 422
    assert bad.json["error"]["code"] == "validation_failed"
    assert list(bad.json["error"]["fields"]) == ["paid_amount"]
    wrong_option = send(hook, payment(status="refunded"))
    assert wrong_option.status_code == 422
    assert list(wrong_option.json["error"]["fields"]) == ["payment_status"]
    assert current(hook, record["id"])["version"] == 1 and events(hook) == []
    fixed = send(hook, payment(amount="5"))  # the same event id, now valid
    assert fixed.status_code == 200 and fixed.json["data"]["replayed"] is False
    assert current(hook, record["id"])["state"] == "paid"


def test_a_failing_transition_rolls_the_whole_event_back(hook):
    record = order(hook)
    response = send(hook, payment(amount=None))  # `pay` requires paid_amount
    assert response.status_code == 422
    assert list(response.json["error"]["fields"]) == ["paid_amount"]
    now = current(hook, record["id"])
    assert (now["payment_status"], now["version"]) == (None, 1) and events(hook) == []


def test_bodies_that_are_not_json_or_too_large_or_without_event_id(hook):
    order(hook)
    assert send(hook, b"{not json").status_code == 400
    assert send(hook, b"[1, 2]").status_code == 400
    no_id = send(hook, {"data": {"order_no": "SO-1", "status": "paid"}})
    assert no_id.status_code == 400 and "$.event.id" in no_id.json["error"]["message"]
    too_large = send(hook, {"event": {"id": "x"}, "pad": "x" * 20_000})
    assert too_large.status_code == 413
    assert too_large.json["error"]["code"] == "payload_too_large"
    assert events(hook) == []


def test_an_unset_secret_refuses_every_request(hook, monkeypatch):
    order(hook)
    monkeypatch.delenv("CRM_TEST_PAY_SECRET")
    assert send(hook, payment()).status_code == 401
    assert events(hook) == []


def test_openapi_lists_the_public_inbound_paths(hook):
    hook.world.users.create("admin", "pw", ["admin"])
    token = hook.post("/api/v1/auth/token", json={"username": "admin", "password": "pw"})
    document = hook.get("/api/v1/openapi.json",
                        headers={"Authorization": f"Bearer {token.json['token']}"}).json
    path = document["paths"]["/inbound/payments"]["post"]
    assert path["security"] == []
    assert [p["name"] for p in path["parameters"]] == ["X-Pay-Signature", "X-Pay-Timestamp"]
    assert [p["name"] for p in document["paths"]["/inbound/shop"]["post"]["parameters"]] == [
        "X-Signature", "X-Event-Id"]


# ---------------------------------------------------------------- checking the configuration

def test_inbound_mistakes_are_reported_with_positions(site):
    path = site({
        "inbound/a.yaml": """
            inbound: a
            secret_env: A_SECRET
            event_id: $.id
            entity: opportunity
            match: {nme: $.name, lines: $.lines}
            set: {amount: $.amount, stage: $.stage, expected: $.x, probabilty: $.p}
            transition: winn
            """,
        "inbound/b.yaml": """
            inbound: b
            event_id: {header: X-Id}
            entity: opportunty
            match: {name: $.name}
            """,
        "inbound/c.yaml": """
            inbound: c
            secret_env: C_SECRET
            event_id: {path: "$.id"}
            entity: opportunity
            match: {name: "$..name"}
            transition: {name: lose, when: {"$.status": lost}}
            create_if_missing: true
            """,
        "inbound/d.yaml": """
            inbound: d
            secret_env: D_SECRET
            event_id: $.id
            entity: opportunity_line
            match: {product: $.p}
            """,
        "inbound/e.yaml": """
            inbound: a
            secret_env: E_SECRET
            event_id: $.id
            entity: customer
            match: {name: $.name}
            """,
        "inbound/f.yaml": """
            inbound: f
            secret_env: F_SECRET
            event_id: $.id
            entity: opportunity
            match: {name: $.name}
            transition: {name: win, when: {"$.status": won}}
            create_if_missing: true
            """,
    })
    assert problems_of(path) == [
        ("inbound/a.yaml", 5, 9, "unknown-field"),
        ("inbound/a.yaml", 5, 22, "bad-match"),
        ("inbound/a.yaml", 6, 25, "not-writable"),
        ("inbound/a.yaml", 6, 41, "not-writable"),
        ("inbound/a.yaml", 6, 56, "unknown-field"),
        ("inbound/a.yaml", 7, 13, "unknown-transition"),
        ("inbound/b.yaml", 1, 1, "missing-key"),
        ("inbound/c.yaml", 5, 15, "bad-value"),
        ("inbound/d.yaml", 4, 9, "child-entity"),
        ("inbound/e.yaml", 1, 10, "duplicate-inbound"),
        ("inbound/f.yaml", 7, 20, "missing-required"),
    ]


def test_a_valid_source_compiles(site, load):
    registry = load(site({"inbound/deals.yaml": """
        inbound: deals
        label: {en: CRM sync, zh: 同步}
        secret_env: DEALS_SECRET
        signature: {header: X-Sig, timestamp_header: X-Time, tolerance: 60}
        event_id: {header: X-Delivery}
        entity: opportunity
        match: {name: data.name}
        set: {amount: data.items.0.amount, loss_reason: $.reason}
        transition: {name: lose, when: {"$.status": lost, "data.final": true}}
        """}))
    source = registry.inbound["deals"]
    assert (source.secret_env, source.signature_header, source.timestamp_header,
            source.tolerance, source.event_id_header, source.event_id_path) == (
        "DEALS_SECRET", "X-Sig", "X-Time", 60, "X-Delivery", None)
    assert dict(source.match) == {"name": ("data", "name")}
    assert dict(source.set) == {"amount": ("data", "items", "0", "amount"),
                                "loss_reason": ("reason",)}
    assert (source.transition, dict(source.transition_when)) == (
        "lose", {("status",): "lost", ("data", "final"): True})


def test_a_concurrent_copy_of_an_event_gets_the_first_outcome(hook, monkeypatch):
    record = order(hook)
    first = send(hook, payment())
    receiver = hook.application.extensions["crm_inbound"]
    looked = []
    real = receiver._previous

    def missed_once(source, event_id):  # the copy checked before the first one committed
        looked.append(event_id)
        return None if len(looked) == 1 else real(source, event_id)

    monkeypatch.setattr(receiver, "_previous", missed_once)
    copy = send(hook, payment(amount="999.00"))
    assert copy.status_code == 200, copy.json
    assert copy.json["data"] == {**first.json["data"], "replayed": True}
    assert str(current(hook, record["id"])["paid_amount"]) == "120.50"
    assert len(events(hook)) == 1
