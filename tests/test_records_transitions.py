"""Workflow transitions through the record service: order of checks, conversion, approvals."""

import threading
from decimal import Decimal

import pytest

from conftest import FIXTURES, World, write_site
from engine.errors import Conflict, Forbidden, NotFound, ValidationFailed

PROCESS_SITE = FIXTURES / "sites" / "process"


@pytest.fixture
def flow(database_url):
    world = World(database_url, site=PROCESS_SITE)
    yield world
    world.engine.dispose()


def test_initial_state_and_no_plain_update_of_the_state(flow):
    rep = flow.user("rep", "rep")
    lead = flow.service.create(rep, "lead", {"company": "Acme"})
    assert lead["status"] == "new"
    with pytest.raises(ValidationFailed) as caught:
        flow.service.update(rep, "lead", lead["id"], {"status": "qualified"}, 1)
    assert list(caught.value.fields) == ["status"]


def test_checks_in_api_order(flow):
    rep, other = flow.user("rep", "rep"), flow.user("rep2", "rep")
    lead = flow.service.create(rep, "lead", {"company": "Acme"})
    with pytest.raises(NotFound):
        flow.service.transition(rep, "lead", lead["id"], "teleport")
    with pytest.raises(NotFound):  # unreadable record: absent, whatever the transition
        flow.service.transition(other, "lead", lead["id"], "qualify")
    with pytest.raises(Forbidden):
        flow.service.transition(rep, "lead", lead["id"], "reopen")  # manager only
    with pytest.raises(Conflict):
        flow.service.transition(flow.user("m", "manager"), "lead", lead["id"], "reopen")
    with pytest.raises(ValidationFailed) as caught:
        flow.service.transition(rep, "lead", lead["id"], "qualify")
    assert caught.value.fields == {"source": ["is required"]}
    with pytest.raises(ValidationFailed) as caught:
        flow.service.transition(rep, "lead", lead["id"], "qualify", {"source": "web"})
    assert list(caught.value.fields) == ["__all__"]
    assert "budget > 1000.0" in caught.value.fields["__all__"][0]
    assert flow.service.get(rep, "lead", lead["id"])["source"] is None  # nothing half-applied


def test_guard_that_errors_at_runtime_fails_with_a_message_not_a_crash(flow):
    rep = flow.user("rep", "rep")
    lead = flow.service.create(rep, "lead", {"company": "Acme", "source": "web"})
    with pytest.raises(ValidationFailed) as caught:  # budget is null: null > 1000.0 errors
        flow.service.transition(rep, "lead", lead["id"], "qualify")
    assert "budget > 1000.0" in caught.value.fields["__all__"][0]


def test_lead_conversion_creates_customer_and_opportunity_atomically(flow):
    rep = flow.user("rep", "rep")
    lead = flow.service.create(rep, "lead", {"company": "Acme 机电", "source": "fair",
                                             "budget": "5000"})
    lead = flow.service.transition(rep, "lead", lead["id"], "qualify")
    assert lead["status"] == "qualified" and lead["version"] == 2
    options = flow.service.transitions(rep, "lead", lead["id"])
    assert [(t["name"], t["to"], t["ready"]) for t in options] == [
        ("convert", "converted", True), ("lose", "lost", False)]
    converted = flow.service.transition(rep, "lead", lead["id"], "convert", version=2)
    assert converted["status"] == "converted"
    customer = flow.service.get(rep, "customer", converted["customer"])
    assert customer["name"] == "Acme 机电" and customer["source"] == "fair"
    assert customer["owner"] == rep.user_id
    deal = flow.service.get(rep, "opportunity", converted["opportunity"])
    assert deal["name"] == "Acme 机电 - first deal" and deal["customer"] == customer["id"]
    assert deal["amount"] == Decimal("5000.00")
    history, _ = flow.service.history(rep, "lead", lead["id"])
    assert history[0]["action"] == "transition:convert"
    assert history[0]["changes"]["status"] == ["qualified", "converted"]


def test_a_failing_create_rolls_the_whole_transition_back(flow):
    import sqlalchemy as sa
    rep = flow.user("rep", "rep")
    flow.service.create(rep, "customer", {"name": "Acme"})  # the converted name is taken
    lead = flow.service.create(rep, "lead", {"company": "Acme", "source": "web",
                                             "budget": "5000"})
    flow.service.transition(rep, "lead", lead["id"], "qualify")
    with pytest.raises(ValidationFailed) as caught:
        flow.service.transition(rep, "lead", lead["id"], "convert")
    assert "name: must be unique" in caught.value.fields["__all__"][0]
    with flow.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from e_customer")).scalar() == 1
        assert conn.execute(sa.text("select count(*) from e_opportunity")).scalar() == 0
    assert flow.service.get(rep, "lead", lead["id"])["status"] == "qualified"


def test_approval_pattern(flow):
    rep, manager = flow.user("rep", "rep"), flow.user("boss", "manager")
    small = flow.service.create(rep, "quote", {"title": "small", "discount": 5})
    assert [t["name"] for t in flow.service.transitions(rep, "quote", small["id"]) if t["ready"]] \
        == ["confirm"]
    assert flow.service.transition(rep, "quote", small["id"], "confirm")["state"] == "approved"
    big = flow.service.create(rep, "quote", {"title": "big", "discount": 30})
    with pytest.raises(ValidationFailed):
        flow.service.transition(rep, "quote", big["id"], "confirm")
    big = flow.service.transition(rep, "quote", big["id"], "submit")
    assert big["state"] == "pending_approval"
    assert flow.service.transitions(rep, "quote", big["id"]) == []  # a rep sees no buttons
    with pytest.raises(Forbidden):
        flow.service.transition(rep, "quote", big["id"], "approve")
    approved = flow.service.transition(manager, "quote", big["id"], "approve")
    assert approved["state"] == "approved" and approved["approved_by"] == manager.user_id


def test_stale_version_and_concurrent_transitions(flow):
    rep = flow.user("rep", "rep")
    quote = flow.service.create(rep, "quote", {"title": "q", "discount": 30})
    with pytest.raises(Conflict):
        flow.service.transition(rep, "quote", quote["id"], "submit", version=7)
    results = []

    def fire():
        try:
            flow.service.transition(rep, "quote", quote["id"], "submit", version=1)
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["ok"]
    history, _ = flow.service.history(rep, "quote", quote["id"])
    assert [h["action"] for h in history] == ["transition:submit", "create"]


def test_self_approval_is_refused_when_the_workflow_says_so(flow):
    manager, other = flow.user("boss", "manager"), flow.user("boss2", "manager")
    quote = flow.service.create(manager, "quote", {"title": "own deal", "discount": 40})
    quote = flow.service.transition(manager, "quote", quote["id"], "submit")
    assert [t["name"] for t in flow.service.transitions(manager, "quote", quote["id"])] == \
        ["reject"]
    with pytest.raises(Forbidden) as caught:
        flow.service.transition(manager, "quote", quote["id"], "approve")
    assert "someone else" in caught.value.message
    assert flow.service.transition(other, "quote", quote["id"], "approve")["state"] == "approved"


def test_a_transition_body_needs_the_right_to_update_the_record(flow):
    rep, manager = flow.user("rep", "rep"), flow.user("boss", "manager")
    quote = flow.service.create(manager, "quote", {"title": "mine", "discount": 40})
    flow.service.transition(manager, "quote", quote["id"], "submit")
    other = flow.user("boss2", "manager")
    approved = flow.service.transition(other, "quote", quote["id"], "approve")
    assert approved["approved_by"] == other.user_id
    lead = flow.service.create(rep, "lead", {"company": "X"})
    with pytest.raises(NotFound):  # another rep cannot even see it
        flow.service.transition(flow.user("rep2", "rep"), "lead", lead["id"], "qualify",
                                {"source": "web"})


LINKED_SITE = {
    "entities/campaign.yaml": """
        entity: campaign
        fields:
          name: {type: string, required: true}
          budget: {type: money}
        """,
    "entities/claim.yaml": """
        entity: claim
        fields:
          campaign: {type: reference, to: campaign, required: true}
          amount: {type: money, required: true}
          over_budget: {type: boolean, read_only_if: "state == 'draft'"}
        """,
    "workflows/claim_flow.yaml": """
        workflow: claim_flow
        entity: claim
        field: state
        initial: draft
        states: {draft: {}, approved: {final: true}}
        transitions:
          approve:
            from: draft
            to: approved
            guard: "amount <= campaign.budget"
            set: {over_budget: "amount > campaign.budget * 0.9"}
        """,
}


def test_a_guard_reads_a_linked_records_field(tmp_path, database_url):
    """No field rule of `claim` mentions `campaign`: the workflow alone must be enough. And
    the transition's `set` may change a field that read_only_if locks against people."""
    world = World(database_url, site=write_site(tmp_path / "site", LINKED_SITE))
    try:
        admin = world.user("admin1", "admin")
        campaign = world.service.create(admin, "campaign", {"name": "Expo", "budget": "1000"})
        small = world.service.create(admin, "claim", {"campaign": campaign["id"],
                                                      "amount": "950"})
        big = world.service.create(admin, "claim", {"campaign": campaign["id"],
                                                    "amount": "1200"})
        approved = world.service.transition(admin, "claim", small["id"], "approve")
        assert (approved["state"], approved["over_budget"]) == ("approved", True)
        with pytest.raises(ValidationFailed):
            world.service.transition(admin, "claim", big["id"], "approve")
        with pytest.raises(ValidationFailed) as locked:
            world.service.update(admin, "claim", big["id"], {"over_budget": True}, 1)
        assert locked.value.fields == {"over_budget": ["is read-only"]}
    finally:
        world.engine.dispose()
