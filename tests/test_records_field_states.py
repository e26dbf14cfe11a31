"""RecordService.field_states: what a form shows, requires and locks, as the checks judge it."""

import pytest

from conftest import World, write_site
from engine.errors import Forbidden, NotFound, ValidationFailed


def refused(call) -> dict:
    """The fields a create/update refuses (empty when it succeeds)."""
    try:
        call()
    except ValidationFailed as exc:
        return exc.fields
    return {}


def test_required_if_follows_the_values_like_the_check_on_create(world):
    admin = world.user("admin1", "admin")
    for tier in ("a", "b", None):
        states = world.service.field_states(admin, "account", {"name": "X", "tier": tier})
        errors = refused(lambda: world.service.create(admin, "account",
                                                      {"name": "X", "tier": tier}))
        assert states["tax_id"]["required"] is (tier == "a")
        assert ("tax_id" in errors) is states["tax_id"]["required"]
    assert world.service.field_states(admin, "account", {})["name"]["required"] is True


def test_visible_if_refers_to_another_field(world):
    admin = world.user("admin1", "admin")
    states = world.service.field_states
    assert states(admin, "account", {"tier": "a"})["vip_since"]["visible"] is True
    assert states(admin, "account", {"tier": "b"})["vip_since"]["visible"] is False
    assert states(admin, "account", {})["vip_since"]["visible"] is False
    assert states(admin, "account", {"tier": "b"})["name"]["visible"] is True  # no rule
    # the service keeps the value of an invisible field: visibility is the form's concern
    record = world.service.create(admin, "account", {"name": "X", "tier": "b",
                                                     "vip_since": "2020-01-02"})
    assert str(record["vip_since"]) == "2020-01-02"


def test_visible_if_refers_to_a_referenced_record(world):
    admin = world.user("admin1", "admin")
    vip = world.service.create(admin, "account", {"name": "Vip", "tier": "a", "tax_id": "T"})
    plain = world.service.create(admin, "account", {"name": "Plain", "tier": "c"})
    states = world.service.field_states
    assert states(admin, "deal", {"account": vip["id"]})["vip_terms"]["visible"] is True
    assert states(admin, "deal", {"account": plain["id"]})["vip_terms"]["visible"] is False
    # no account: `account.tier` fails to evaluate, and a failing condition does not hold
    assert states(admin, "deal", {"account": None})["vip_terms"]["visible"] is False
    deal = world.service.create(admin, "deal", {"title": "D", "account": plain["id"]})
    assert states(admin, "deal", {}, deal["id"])["vip_terms"]["visible"] is False
    assert states(admin, "deal", {"account": vip["id"]}, deal["id"])["vip_terms"]["visible"]


def test_read_only_if_is_judged_on_the_stored_record_like_the_check_on_update(world):
    admin = world.user("admin1", "admin")
    locked = world.service.create(admin, "account", {"name": "A", "tier": "a", "tax_id": "T"})
    open_ = world.service.create(admin, "account", {"name": "B", "tier": "c"})
    states = world.service.field_states
    # a new record has no stored values: read_only_if never locks on create
    assert states(admin, "account", {"tier": "a"})["locked_note"]["read_only"] is False
    # the stored tier decides, whatever the form now says
    assert states(admin, "account", {"tier": "c"}, locked["id"])["locked_note"]["read_only"]
    assert not states(admin, "account", {"tier": "a", "tax_id": "T"},
                      open_["id"])["locked_note"]["read_only"]
    assert refused(lambda: world.service.update(admin, "account", locked["id"],
                                                {"tier": "c", "locked_note": "x"}, 1)) \
        == {"locked_note": ["is read-only"]}
    assert refused(lambda: world.service.update(admin, "account", open_["id"],
                                                {"tier": "a", "tax_id": "T",
                                                 "locked_note": "x"}, 1)) == {}


def test_static_rules_permissions_and_hidden_fields(world):
    rep = world.user("rep1", "rep")
    states = world.service.field_states(rep, "account", {"name": "X"})
    assert "secret" not in states  # hidden from reps: not even named
    assert states["credit_limit"]["read_only"] is True  # the role may only read it
    assert states["vip_label"]["read_only"] is True and \
        states["vip_label"]["required"] is False  # computed
    assert states["open_deals"]["read_only"] is True  # rollup
    assert states["name"] == {"visible": True, "required": True, "read_only": False}
    deal_states = world.service.field_states(rep, "deal", {})
    assert deal_states["stage"]["read_only"] is True  # the workflow moves it, not a form


def test_who_may_ask(world):
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    viewer = world.user("viewer1", "viewer")
    mine = world.service.create(rep1, "account", {"name": "Mine"})
    assert world.service.field_states(rep1, "account", {}, mine["id"])["name"]["visible"]
    with pytest.raises(NotFound):  # another rep's record does not exist for rep2
        world.service.field_states(rep2, "account", {}, mine["id"])
    with pytest.raises(Forbidden):  # readable, not changeable
        world.service.field_states(viewer, "account", {}, mine["id"])
    with pytest.raises(Forbidden):
        world.service.field_states(viewer, "account", {})
    with pytest.raises(NotFound):
        world.service.field_states(viewer, "deal", {})
    with pytest.raises(NotFound):
        world.service.field_states(rep1, "deal_line", {})  # reached through its parent only
    with pytest.raises(NotFound):
        world.service.field_states(rep1, "account", {}, 999)
    with pytest.raises(NotFound):
        world.service.field_states(rep1, "nothing", {})


def test_values_the_service_would_refuse_are_left_out(world):
    admin = world.user("admin1", "admin")
    states = world.service.field_states(admin, "account", {
        "tier": "nope", "employees": "many", "id": 3, "nonsense": 1, "vip_label": "x"})
    assert states["tax_id"]["required"] is False and states["vip_since"]["visible"] is False
    with pytest.raises(ValidationFailed):
        world.service.field_states(admin, "account", ["not", "a", "mapping"])


ORDER_SITE = {
    "entities/company.yaml": """
        entity: company
        fields:
          name: {type: string, required: true}
          grade: {type: enum, options: [a, b]}
        """,
    "entities/order.yaml": """
        entity: order
        fields:
          title: {type: string, required: true}
          company: {type: reference, to: company}
          amount: {type: money}
          approval:
            type: string
            required_if: "company.grade == 'a' && amount != null && amount > 1000.0"
          lost: {type: boolean, default: false}
          reason: {type: string}
          memo: {type: text}
        form:
          sections:
            - label: Order
              fields: [title, company, amount, approval, lost]
            - label: Loss
              fields: [reason]
              visible_if: "lost"
        """,
}


@pytest.fixture
def orders(database_url, tmp_path):
    w = World(database_url, site=write_site(tmp_path / "orders", ORDER_SITE))
    yield w
    w.engine.dispose()


def test_required_if_on_a_referenced_record_matches_the_check(orders):
    admin = orders.user("admin1", "admin")
    grade_a = orders.service.create(admin, "company", {"name": "A", "grade": "a"})
    grade_b = orders.service.create(admin, "company", {"name": "B", "grade": "b"})
    for company in (grade_a, grade_b, None):
        for amount in ("5000", "10", None):
            data = {"title": "O", "company": company and company["id"], "amount": amount}
            states = orders.service.field_states(admin, "order", data)
            errors = refused(lambda: orders.service.create(admin, "order", data))
            expected = company is grade_a and amount == "5000"
            assert states["approval"]["required"] is expected, (company, amount)
            assert ("approval" in errors) is expected, (company, amount)
    small = orders.service.create(admin, "order", {"title": "O", "company": grade_a["id"],
                                                   "amount": "10"})
    states = orders.service.field_states(admin, "order", {"amount": "5000"}, small["id"])
    assert states["approval"]["required"] is True  # the stored company, the new amount
    assert "approval" in refused(lambda: orders.service.update(admin, "order", small["id"],
                                                               {"amount": "5000"}, 1))


def test_a_section_rule_hides_its_fields(orders):
    admin = orders.user("admin1", "admin")
    states = orders.service.field_states
    assert states(admin, "order", {})["reason"]["visible"] is False  # lost defaults to false
    assert states(admin, "order", {"lost": True})["reason"]["visible"] is True
    assert states(admin, "order", {"lost": True})["title"]["visible"] is True
    assert states(admin, "order", {})["memo"]["visible"] is True  # in no section: no rule
    record = orders.service.create(admin, "order", {"title": "O", "lost": True})
    assert states(admin, "order", {}, record["id"])["reason"]["visible"] is True
    assert states(admin, "order", {"lost": False}, record["id"])["reason"]["visible"] is False
