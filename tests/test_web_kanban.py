"""The kanban board, owner change and deletion in the server-rendered UI."""

import re

import pytest

from conftest import FIXTURES, World
from web import create_app

KANBAN_SITE = FIXTURES / "sites" / "kanban"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def board(database_url, monkeypatch):
    """A signed-out test client of the kanban site, with its World as `client.world`."""
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    world = World(database_url, site=KANBAN_SITE)
    for name, role in (("rep", "rep"), ("rep2", "rep"), ("boss", "manager"),
                       ("viewer", "viewer")):
        world.users.create(name, f"pw-{name}", [role])
    client = create_app(world.registry, world.engine).test_client()
    client.world = world
    yield client
    world.engine.dispose()


def caller(client, username):
    users = client.world.users
    return users.caller(users.by_username(username))


def html(response) -> str:
    return response.get_data(as_text=True)


def csrf_of(client, path):
    match = CSRF.search(html(client.get(path)))
    assert match, path
    return match.group(1)


def sign_in(client, username):
    response = client.post("/login", data={"username": username, "password": f"pw-{username}",
                                           "csrf_token": csrf_of(client, "/login")})
    assert response.status_code == 302, html(response)


def post(client, path, data, csrf_from="/deal/board"):
    """POST a UI form with the CSRF token read from the page `csrf_from`."""
    return client.post(path, data={**data, "csrf_token": csrf_of(client, csrf_from)})


def switch_to_chinese(client):
    assert post(client, "/locale", {"locale": "zh", "next": "/deal"}).status_code == 302


def new_deal(client, title="Pump order", owner="rep", **values):
    world = client.world
    company = world.service.create(caller(client, owner), "company", {"name": f"{title} Co"})
    return world.service.create(caller(client, owner), "deal",
                                {"title": title, "company": company["id"], **values})


def stage_of(client, deal_id):
    return client.world.service.get(caller(client, "boss"), "deal", deal_id)["stage"]


def column(page: str, state: str) -> str:
    """The HTML of one board column."""
    return page.split(f'data-state="{state}" aria-labelledby')[1].split("</section>")[0]


def count_of(page: str, state: str) -> int:
    return int(re.search(r'class="count"[^>]*>(\d+)', column(page, state)).group(1))


def alert(page: str) -> str:
    return page.split('role="alert"')[1].split("</div>")[0]


# ---------------------------------------------------------------- the board

def test_board_shows_the_workflow_states_in_order_with_counts_and_cards(board):
    sign_in(board, "rep")
    world, rep = board.world, caller(board, "rep")
    first = new_deal(board, "First", amount="10")
    second = new_deal(board, "Second")
    world.service.transition(rep, "deal", second["id"], "propose")
    third = new_deal(board, "Third", loss_reason="price")
    world.service.transition(rep, "deal", third["id"], "lose")

    page = html(board.get("/deal/board"))
    positions = [page.index(f'data-state="{s}" aria-labelledby') for s in
                 ("lead", "proposal", "won", "lost")]
    assert positions == sorted(positions)  # the configured order
    assert ">Lead</span>" in page and ">Proposal</span>" in page
    assert [count_of(page, s) for s in ("lead", "proposal", "won", "lost")] == [1, 1, 0, 1]
    assert f'href="/deal/{first["id"]}">First</a>' in column(page, "lead")
    assert "Amount:</span> 10.00" in column(page, "lead")  # a list column under the title
    assert "Company:</span> First Co" in column(page, "lead")  # a reference by its title
    assert f'href="/deal/{second["id"]}">Second</a>' in column(page, "proposal")
    assert "Third" in column(page, "lost") and "Nothing here." in column(page, "won")
    assert 'src="/static/kanban.js"' in page
    assert board.get("/static/kanban.js").status_code == 200

    # the card's form offers the steps out of its state that the role may take
    lead_card = column(page, "lead")
    assert '<option value="propose">Send proposal → Proposal</option>' in lead_card
    assert 'value="lose"' in lead_card and 'value="fast_win"' not in lead_card
    assert 'name="version" value="1"' in lead_card


def test_list_and_board_link_to_each_other(board):
    sign_in(board, "rep")
    assert 'href="/deal/board"' in html(board.get("/deal"))
    assert 'href="/deal"' in html(board.get("/deal/board")).split('class="page-head"')[1]
    assert "/board" not in html(board.get("/company"))  # no workflow, no board
    assert board.get("/company/board").status_code == 404
    assert board.get("/nothing/board").status_code == 404


def test_the_board_needs_a_signed_in_user_and_shows_only_readable_records(board):
    assert board.get("/deal/board").headers["Location"] == "/login?next=/deal/board"
    new_deal(board, "Visible to all readers")
    sign_in(board, "viewer")
    page = html(board.get("/deal/board"))
    assert "Visible to all readers" in page
    assert 'class="move"' not in page and 'draggable="true"' not in page  # may not move any


def test_a_manager_is_offered_the_manager_only_step(board):
    new_deal(board, "Big one")
    sign_in(board, "boss")
    lead = column(html(board.get("/deal/board")), "lead")
    assert '<option value="fast_win">Win directly → Won</option>' in lead


def test_moving_with_the_card_form_fires_the_transition_and_writes_history(board):
    deal = new_deal(board)
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"transition": "propose", "version": "1"})
    assert response.status_code == 302 and response.headers["Location"] == "/deal/board"
    assert stage_of(board, deal["id"]) == "proposal"
    page = html(board.get("/deal/board"))
    assert "“Pump order” moved to Proposal." in page.split('class="notice')[1]
    assert "Pump order" in column(page, "proposal") and "Pump order" not in column(page, "lead")
    assert count_of(page, "proposal") == 1 and count_of(page, "lead") == 0
    history, _ = board.world.service.history(caller(board, "rep"), "deal", deal["id"])
    assert history[0]["action"] == "transition:propose"
    assert history[0]["changes"]["stage"] == ["lead", "proposal"]
    assert "Pump order" not in html(board.get("/deal/board")).split('class="board"')[0]  # once


def test_dropping_on_a_column_fires_the_one_transition_leading_there(board):
    deal = new_deal(board, amount="5")
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"to": "proposal", "version": "1"})
    assert response.status_code == 302 and stage_of(board, deal["id"]) == "proposal"
    # the target column wins over the select's value: the drop is what the person did
    response = post(board, f"/deal/board/{deal['id']}", {"to": "won", "transition": "withdraw",
                                                         "version": "2"})
    assert response.status_code == 302 and stage_of(board, deal["id"]) == "won"
    history, _ = board.world.service.history(caller(board, "rep"), "deal", deal["id"])
    assert [e["action"] for e in history[:2]] == ["transition:win", "transition:propose"]


def test_several_transitions_to_the_dropped_column_ask_which_one(board):
    deal = new_deal(board)
    rep = caller(board, "rep")
    board.world.service.transition(rep, "deal", deal["id"], "propose")
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"to": "lost", "version": "2"})
    assert response.status_code == 200 and stage_of(board, deal["id"]) == "proposal"
    choice = html(response).split('class="choice"')[1].split('class="board"')[0]
    assert "Several steps lead from Proposal to Lost" in choice
    assert 'name="transition" value="lose"' in choice and ">Lose</button>" in choice
    assert 'name="transition" value="withdraw"' in choice and ">Withdraw</button>" in choice
    response = post(board, f"/deal/board/{deal['id']}", {"transition": "withdraw",
                                                         "version": "2"})
    assert response.status_code == 302 and stage_of(board, deal["id"]) == "lost"


def test_a_move_the_role_may_not_do_shows_the_reason_in_the_users_language(board):
    deal = new_deal(board)
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"to": "won", "version": "1"})
    assert response.status_code == 403
    message = alert(html(response))
    assert "“Pump order” was not moved:" in message
    assert "your role may not Win directly this record" in message
    assert "Traceback" not in html(response) and 'class="board"' in html(response)
    switch_to_chinese(board)
    response = post(board, f"/deal/board/{deal['id']}", {"transition": "fast_win",
                                                         "version": "1"})
    assert response.status_code == 403
    message = alert(html(response))
    assert "“Pump order”未能移动：" in message and "您的角色不能对此记录执行“直接赢单”" in message
    # another rep's deal: readable, but theirs to move
    others = new_deal(board, "Not mine", owner="rep2")
    response = post(board, f"/deal/board/{others['id']}", {"to": "proposal", "version": "1"})
    assert response.status_code == 403 and "您的角色不能对此记录执行" in alert(html(response))
    assert stage_of(board, deal["id"]) == "lead" and stage_of(board, others["id"]) == "lead"


def test_missing_required_fields_and_a_failed_guard_are_shown_on_the_board(board):
    deal = new_deal(board)
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"transition": "lose", "version": "1"})
    assert response.status_code == 422
    message = alert(html(response))
    assert "Loss reason: is required" in message
    assert f'href="/deal/{deal["id"]}"' in message  # where to fill it in
    post(board, f"/deal/board/{deal['id']}", {"transition": "propose", "version": "1"})
    response = post(board, f"/deal/board/{deal['id']}", {"to": "won", "version": "2"})
    assert response.status_code == 422
    assert "&#39;Win&#39; is not allowed now" in alert(html(response))
    assert stage_of(board, deal["id"]) == "proposal"


def test_a_move_to_a_state_no_transition_leads_to_is_refused(board):
    deal = new_deal(board)
    board.world.service.transition(caller(board, "rep"), "deal", deal["id"], "propose")
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"to": "lead", "version": "2"})
    assert response.status_code == 409
    assert "No step leads from Proposal to Lead." in alert(html(response))
    switch_to_chinese(board)
    response = post(board, f"/deal/board/{deal['id']}", {"to": "lead", "version": "2"})
    assert response.status_code == 409
    assert "没有从“报价”到“线索”的流程操作。" in alert(html(response))
    response = post(board, f"/deal/board/{deal['id']}", {"to": "nowhere", "version": "2"})
    assert response.status_code == 400 and "没有“nowhere”这一列。" in alert(html(response))
    # a transition chosen by name that cannot leave the current state
    response = post(board, f"/deal/board/{deal['id']}", {"transition": "propose",
                                                         "version": "2"})
    assert response.status_code == 409
    # dropped back on its own column: nothing happens
    response = post(board, f"/deal/board/{deal['id']}", {"to": "proposal", "version": "2"})
    assert response.status_code == 302
    assert stage_of(board, deal["id"]) == "proposal"
    history, _ = board.world.service.history(caller(board, "rep"), "deal", deal["id"])
    assert len(history) == 2  # created, proposed: nothing else was written


def test_a_stale_card_is_refused(board):
    deal = new_deal(board)
    board.world.service.update(caller(board, "rep"), "deal", deal["id"], {"amount": "3"}, 1)
    sign_in(board, "rep")
    response = post(board, f"/deal/board/{deal['id']}", {"transition": "propose",
                                                         "version": "1"})
    assert response.status_code == 409
    assert "changed by someone else (now version 2)" in alert(html(response))
    assert stage_of(board, deal["id"]) == "lead"


def test_markup_in_a_card_title_is_shown_as_text(board):
    payload = "<script>alert(1)</script>"
    deal = new_deal(board, payload)
    board.world.service.transition(caller(board, "rep"), "deal", deal["id"], "propose")
    sign_in(board, "rep")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    page = html(board.get("/deal/board"))
    assert payload not in page and escaped in column(page, "proposal")
    choice = html(post(board, f"/deal/board/{deal['id']}", {"to": "lost", "version": "2"}))
    assert payload not in choice and f"“{escaped}”" in choice
    refused = html(post(board, f"/deal/board/{deal['id']}", {"to": "lead", "version": "2"}))
    assert payload not in refused and f"“{escaped}” was not moved" in refused
    post(board, f"/deal/board/{deal['id']}", {"transition": "withdraw", "version": "2"})
    moved = html(board.get("/deal/board"))
    assert payload not in moved and f"“{escaped}” moved to Lost." in moved
    record = html(board.get(f"/deal/{deal['id']}"))
    assert payload not in record and f"Delete “{escaped}”?" in record


# ---------------------------------------------------------------- owner change

def test_a_manager_changes_the_owner(board):
    deal = new_deal(board)
    rep2 = board.world.users.by_username("rep2")
    sign_in(board, "boss")
    page = html(board.get(f"/deal/{deal['id']}"))
    owner_form = page.split('class="owner-form"')[1].split("</form>")[0]
    assert f'action="/deal/{deal["id"]}/owner"' in page
    rep_id = board.world.users.by_username("rep")
    assert f'<option value="{rep_id}" selected>rep</option>' in owner_form
    assert f'<option value="{rep2}">rep2</option>' in owner_form
    response = post(board, f"/deal/{deal['id']}/owner", {"owner": str(rep2), "version": "1"},
                    f"/deal/{deal['id']}")
    assert response.status_code == 302 and response.headers["Location"] == f"/deal/{deal['id']}"
    stored = board.world.service.get(caller(board, "boss"), "deal", deal["id"])
    assert stored["owner"] == rep2 and stored["version"] == 2
    page = html(board.get(f"/deal/{deal['id']}"))
    assert "The owner was changed." in page
    history, _ = board.world.service.history(caller(board, "boss"), "deal", deal["id"])
    assert history[0]["changes"]["owner"] == [rep_id, rep2]
    stale = post(board, f"/deal/{deal['id']}/owner", {"owner": str(rep_id), "version": "1"},
                 f"/deal/{deal['id']}")
    assert stale.status_code == 409 and "changed by someone else" in html(stale)


def test_a_role_without_change_owner_sees_no_form_and_is_refused(board):
    deal = new_deal(board)
    sign_in(board, "rep")
    page = html(board.get(f"/deal/{deal['id']}"))
    assert 'class="owner-form"' not in page and "/owner" not in page
    rep2 = board.world.users.by_username("rep2")
    response = post(board, f"/deal/{deal['id']}/owner", {"owner": str(rep2), "version": "1"},
                    f"/deal/{deal['id']}")
    assert response.status_code == 422
    assert "Owner: you may not change the owner" in alert(html(response))
    switch_to_chinese(board)
    response = post(board, f"/deal/{deal['id']}/owner", {"owner": str(rep2), "version": "1"},
                    f"/deal/{deal['id']}")
    assert response.status_code == 422 and "负责人: 您无权更改负责人" in alert(html(response))
    assert board.world.service.get(caller(board, "rep"), "deal", deal["id"])["owner"] == \
        board.world.users.by_username("rep")


# ---------------------------------------------------------------- delete

def test_delete_with_confirmation_then_back_to_the_list(board):
    deal = new_deal(board, "Short lived")
    sign_in(board, "rep")
    page = html(board.get(f"/deal/{deal['id']}"))
    confirm = page.split('class="delete-record"')[1].split("</details>")[0]
    assert "<summary>Delete…</summary>" in confirm
    assert "Delete “Short lived”? It disappears from lists, searches and boards." in confirm
    assert f'action="/deal/{deal["id"]}/delete"' in confirm and 'name="version"' in confirm
    response = post(board, f"/deal/{deal['id']}/delete", {"version": "1"}, f"/deal/{deal['id']}")
    assert response.status_code == 302 and response.headers["Location"] == "/deal"
    listing = html(board.get("/deal"))
    assert "Deal “Short lived” was deleted." in listing.split('class="notice')[1]
    assert board.get(f"/deal/{deal['id']}").status_code == 404
    assert "Short lived" not in html(board.get("/deal/board"))


def test_delete_blocked_by_a_restrict_reference_says_why(board):
    deal = new_deal(board, "Keeps its company")
    company_id = deal["company"]
    sign_in(board, "rep")
    response = post(board, f"/company/{company_id}/delete", {"version": "1"},
                    f"/company/{company_id}")
    assert response.status_code == 409
    assert "This record cannot be deleted: 1 Deal records refer to it" in alert(html(response))
    assert "Keeps its company Co" in html(response)  # still the record page
    switch_to_chinese(board)
    response = post(board, f"/company/{company_id}/delete", {"version": "1"},
                    f"/company/{company_id}")
    assert response.status_code == 409
    assert "无法删除此记录：有1条交易记录引用它" in alert(html(response))
    assert board.world.service.get(caller(board, "rep"), "company", company_id)["id"] == company_id


def test_delete_is_offered_only_to_who_may_delete(board):
    deal = new_deal(board, owner="rep2")
    sign_in(board, "rep")  # deletes own deals only
    page = html(board.get(f"/deal/{deal['id']}"))
    assert 'class="delete-record"' not in page and 'class="record-actions"' not in page
    response = post(board, f"/deal/{deal['id']}/delete", {"version": "1"}, f"/deal/{deal['id']}")
    assert response.status_code == 403
    assert "This record cannot be deleted: you may not delete Deal" in alert(html(response))
    assert stage_of(board, deal["id"]) == "lead"  # still there


# ---------------------------------------------------------------- CSRF

def test_every_post_without_a_csrf_token_is_refused(board):
    deal = new_deal(board)
    rep2 = board.world.users.by_username("rep2")
    sign_in(board, "boss")
    attempts = [(f"/deal/board/{deal['id']}", {"transition": "propose", "version": "1"}),
                (f"/deal/board/{deal['id']}", {"to": "proposal", "version": "1"}),
                (f"/deal/{deal['id']}/owner", {"owner": str(rep2), "version": "1"}),
                (f"/deal/{deal['id']}/delete", {"version": "1"})]
    for path, data in attempts:
        for token in ({}, {"csrf_token": "forged"}):
            response = board.post(path, data={**data, **token})
            assert response.status_code == 400, path
            assert "The form has expired" in html(response)
    stored = board.world.service.get(caller(board, "boss"), "deal", deal["id"])
    assert (stored["stage"], stored["owner"], stored["version"]) == \
        ("lead", board.world.users.by_username("rep"), 1)
    for path in ("/deal/board/1", "/deal/1/owner", "/deal/1/delete"):
        assert board.get(path).status_code == 405  # state changes only by POST
