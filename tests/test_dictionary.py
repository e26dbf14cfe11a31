"""The data dictionary (engine/dictionary, web/dictionary.py, `crm docs`): what it says about a
small fixture site and about real packs, its diagram sources, the static files, and the admin
pages (admins only)."""

import re
from html import unescape

import pytest

import engine
from engine.dictionary import build_dictionary, diagrams
from engine.registry.model import ACTIONS, SharingRule
from conftest import BARE_ROOT, FIXTURES, World

SITE = FIXTURES / "sites" / "dictionary"
WORDS = {"requires": "requires", "user": "User"}


@pytest.fixture(scope="module")
def registry():
    return engine.load_registry(site=SITE, root=BARE_ROOT)


@pytest.fixture(scope="module")
def dictionary(registry):
    return build_dictionary(registry)


@pytest.fixture(scope="module")
def manufacturing():
    return engine.load_registry(pack="manufacturing")


def fields_of(dictionary, entity):
    return {e.field.name: e for e in dictionary.pages[entity].fields}


# ---------------------------------------------------------------- the model

def test_every_field_is_listed_in_order_with_its_type_and_rules(registry, dictionary):
    for name, entity in registry.entities.items():
        assert [e.field.name for e in dictionary.pages[name].fields] == list(entity.fields)
    clinic = fields_of(dictionary, "clinic")
    assert {n: (e.type_text, [(r.kind, r.text) for r in e.rules]) for n, e in clinic.items()} == {
        "name": ("string", [("required", ""), ("max_length", "120"), ("searched", ""),
                            ("title", "")]),
        "region": ("enum", [("default", "east")]),
        "beds": ("integer", [("min", "0"), ("max", "5000")]),
        "credit_limit": ("money", [("min", "0")]),
        "secret_note": ("text", []),
        "visits": ("rollup: count(visit.clinic)", [("rollup_where", "outcome == 'good'")]),
    }
    visit = fields_of(dictionary, "visit")
    assert [(r.kind, r.text) for r in visit["cost"].rules] == [
        ("required_if", "outcome == 'bad'"), ("min", "0")]
    assert [(r.kind, r.text) for r in visit["doubled"].rules] == [
        ("compute", "coalesce(cost, 0.0) * 2.0")]
    assert [(r.kind, r.text) for r in visit["remarks"].rules] == [
        ("read_only_if", "state == 'done'"), ("visible_if", "outcome == 'bad'")]
    assert [(r.kind, r.text) for r in visit["clinic"].rules] == [
        ("required", ""), ("on_delete", "cascade")]
    assert visit["items"].type_text == "lines -> visit_item"
    assert visit["coach"].type_text == "reference -> user"
    assert ("workflow_state", "visit_flow") in [(r.kind, r.text) for r in visit["state"].rules]


def test_who_may_read_and_write_each_field(dictionary):
    clinic = fields_of(dictionary, "clinic")
    who = {n: (e.readers, e.writers, e.hidden_from, e.read_only_for) for n, e in clinic.items()}
    assert who == {
        # rep reads clinics through a sharing rule and may not write them
        "name": (("admin", "boss", "rep"), ("admin", "boss"), (), ()),
        "region": (("admin", "boss", "rep"), ("admin", "boss"), (), ()),
        "beds": (("admin", "boss", "rep"), ("admin", "boss"), (), ()),
        # `credit_limit: read` comes to boss from rep through `inherits`
        "credit_limit": (("admin", "boss", "rep"), ("admin",), (), ("boss",)),
        # hidden from rep; boss replaces the rule with `read`
        "secret_note": (("admin", "boss"), ("admin",), ("rep",), ("boss",)),
        # a rollup is filled by the engine: nobody writes it
        "visits": (("admin", "boss", "rep"), (), (), ()),
    }
    visit = fields_of(dictionary, "visit")
    assert visit["subject"].writers == ("admin", "boss", "rep")
    assert visit["doubled"].writers == ()  # computed
    assert visit["state"].writers == ()  # only transitions move it


def test_the_role_matrix_says_all_own_and_sharing_rules(dictionary):
    def actions(role, entity):
        return {a: s for a, s in dictionary.grant(role, entity).actions.items() if s}

    everything = dict.fromkeys(ACTIONS, "all")
    for entity in ("clinic", "visit", "territory"):
        assert actions("admin", entity) == everything
    assert actions("boss", "clinic") == everything
    assert actions("boss", "visit") == {"read": "all", "create": "all", "update": "all",
                                        "delete": "all"}
    assert actions("rep", "visit") == {"read": "own", "create": "all", "update": "own"}
    assert actions("rep", "clinic") == {"read": "rule"}
    clinic_rule, = dictionary.grant("rep", "clinic").rules["read"]
    assert (clinic_rule.through, clinic_rule.user, dict(clinic_rule.match)) == \
        ("territory", "rep", {"clinic": "id"})
    territory = dictionary.grant("rep", "territory")
    assert {a: s for a, s in territory.actions.items() if s} == {"read": "rule"}
    assert territory.own_too == {"read"}
    assert territory.rules["read"][0].where.source == "rep.id == user.id"
    # a child entity follows its parent
    item = dictionary.grant("rep", "visit_item")
    assert item.via_parent == "visit" and item.actions["read"] == "own"


def test_references_between_entities(dictionary):
    refs = {(r.source, r.field, r.target, r.kind, r.required) for r in dictionary.references}
    assert refs == {("visit", "clinic", "clinic", "reference", True),
                    ("visit", "coach", "user", "reference", False),
                    ("visit", "items", "visit_item", "lines", False),
                    ("territory", "rep", "user", "reference", True),
                    ("territory", "clinic", "clinic", "reference", True)}
    page = dictionary.pages["clinic"]
    assert {(r.source, r.field) for r in page.references_in} == {("visit", "clinic"),
                                                                 ("territory", "clinic")}
    assert dictionary.pages["visit"].children == ("visit_item",)


# ---------------------------------------------------------------- diagram sources

def test_workflow_diagram_has_every_state_transition_role_and_guard(registry):
    source = diagrams.workflow_diagram(registry, registry.workflows["visit_flow"], "en", WORDS)
    assert source.splitlines() == [
        "stateDiagram-v2",
        "  direction LR",
        '  state "Planned" as s_planned',
        # quotes, '#', ';' and '%' of a label become Mermaid entities: they cannot end the
        # label, open a comment or end the statement
        '  state "Done #quot;really#quot; #35;1#59; 100#37;" as s_done',
        '  state "Cancelled" as s_cancelled',
        "  [*] --> s_planned",
        "  s_planned --> s_done : Complete requires outcome "
        "[outcome != null && subject != #quot;x#59;y#quot;]",
        "  s_planned --> s_cancelled : Cancel (Boss)",
        "  s_done --> s_cancelled : Cancel (Boss)",
        "  s_cancelled --> [*]",
    ]
    chinese = diagrams.workflow_diagram(registry, registry.workflows["visit_flow"], "zh",
                                        {"requires": "必填", "user": "用户"})
    assert 'state "已完成" as s_done' in chinese
    assert "s_planned --> s_cancelled : 取消 (主管)" in chinese


def test_text_keeps_labels_on_one_line_without_syntax():
    assert diagrams.text('a "b"\n #c; 50%') == "a #quot;b#quot; #35;c#59; 50#37;"


def test_reference_diagrams_per_entity_module_and_whole_model(dictionary):
    visit = diagrams.neighbourhood_diagram(dictionary, "visit", "en", WORDS).splitlines()
    assert visit == ["erDiagram", "  direction LR", '  e_clinic["Clinic"]',
                     '  e_user["User"]', '  e_visit["Visit"]', '  e_visit_item["Visit item"]',
                     '  e_visit }o--|| e_clinic : "Clinic"',
                     '  e_visit }o--o| e_user : "Coach"',
                     '  e_visit ||--o{ e_visit_item : "Items"']
    model = diagrams.model_diagram(dictionary, "en", WORDS)
    assert "e_user" not in model  # references to users would tie every entity to one node
    assert all(f'e_{name}["' in model for name in dictionary.pages)
    module = diagrams.module_diagram(dictionary, "field", "en", WORDS)
    assert 'e_territory }o--|| e_clinic : "Clinic"' in module
    assert 'e_territory }o--|| e_user : "Rep"' in module


# ---------------------------------------------------------------- a real pack

def test_a_big_pack_matches_its_compiled_roles(manufacturing):
    dictionary = build_dictionary(manufacturing)
    assert set(dictionary.pages) == set(manufacturing.entities)
    assert len(dictionary.pages) >= 40
    listed = [name for group in dictionary.modules for name in group.entities]
    assert sorted(listed) == sorted(manufacturing.entities)
    # an independent reading of the roles, straight from the registry
    for role in manufacturing.roles.values():
        for name, entity in manufacturing.entities.items():
            grant = dictionary.grant(role.name, name)
            if role.name == "admin" and not entity.parent:
                assert all(grant.actions[a] == "all" for a in ACTIONS)
                continue
            if entity.parent:
                assert grant.via_parent == entity.parent
                continue
            spec = role.entities.get(name)
            for action in ACTIONS:
                value = getattr(spec, action) if spec is not None else None
                expected = "rule" if isinstance(value, SharingRule) else value
                if value is True:
                    expected = "all"
                assert grant.actions[action] == (expected or None), (role.name, name, action)
    for workflow in manufacturing.workflows.values():
        source = diagrams.workflow_diagram(manufacturing, workflow, "en", WORDS)
        for state in workflow.states:
            assert f"as s_{state}\n" in source
        arrows = sum(len(t.sources) for t in workflow.transitions.values())
        assert len(re.findall(r"^  s_\w+ --> s_\w+ : ", source, re.M)) == arrows


def test_pharma_sharing_rules_are_spelled_out(tmp_path):
    from web.dictionary import write_docs
    pharma = engine.load_registry(pack="pharma")
    write_docs(pharma, tmp_path / "docs", "en")
    page = unescape((tmp_path / "docs" / "permissions.html").read_text(encoding="utf-8"))
    rules = re.findall(r'<li value="\d+" data-role="(\w+)" data-entity="(\w+)" '
                       r'data-action="(\w+)">(.*?)</li>', page, re.S)
    expected = {(role.name, entity, action)
                for role in pharma.roles.values()
                for entity, spec in role.entities.items()
                for action in ("read", "update", "delete")
                if isinstance(getattr(spec, action), SharingRule)}
    assert {(r, e, a) for r, e, a, _ in rules} == expected
    assert expected  # the pack has sharing rules
    texts = " ".join(text for *_, text in rules)
    assert "whose rep is the user" in texts


# ---------------------------------------------------------------- crm docs

def run_cli(*args):
    from cli import main
    return main(list(args))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "dictionary"
    assert run_cli("docs", "--site", str(SITE), "-o", str(out)) == 0
    return out


def test_crm_docs_writes_one_page_per_entity_and_its_assets(written):
    registry = engine.load_registry(site=SITE)
    pages = {p.name for p in written.glob("*.html")}
    assert pages == {"index.html", "references.html", "permissions.html"} | {
        f"entity-{name}.html" for name in registry.entities}
    for asset in ("ui.css", "dictionary.css", "dictionary.js", "vendor/mermaid.min.js",
                  "vendor/mermaid.LICENSE.txt"):
        assert (written / "assets" / asset).stat().st_size > 0
    for page in written.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        # nothing from the network: every script, style sheet and link is a local file
        assert not re.search(r'(src|href)="(https?:)?//', text), page.name
        assert '<script src="assets/vendor/mermaid.min.js">' in text
    visit = unescape((written / "entity-visit.html").read_text(encoding="utf-8"))
    for name in registry.entities["visit"].fields:
        assert f'data-field="{name}"' in visit
    assert "Visit" in visit and "拜访" in visit  # both languages of the labels
    assert 's_planned --> s_done : Complete requires outcome' in visit
    assert 'e_visit }o--|| e_clinic : "Clinic"' in visit
    index = (written / "index.html").read_text(encoding="utf-8")
    assert 'href="entity-clinic.html"' in index


def test_crm_docs_reruns_into_its_own_folder_and_refuses_others(written, tmp_path, capsys):
    stale = written / "entity-gone.html"
    stale.write_text("old", encoding="utf-8")
    assert run_cli("docs", "--site", str(SITE), "-o", str(written), "--locale", "zh") == 0
    assert not stale.exists()  # an entity removed since loses its page
    assert "拜访流程" in (written / "entity-visit.html").read_text(encoding="utf-8")

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert run_cli("docs", "--site", str(SITE), "-o", str(other)) == 1
    assert "holds other files" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_crm_docs_of_a_broken_site_fails_and_writes_nothing(tmp_path, capsys):
    broken = tmp_path / "site"
    broken.mkdir()
    (broken / "app.yaml").write_text("app: broken\nlabel: B\n", encoding="utf-8")
    (broken / "entities").mkdir()
    (broken / "entities" / "x.yaml").write_text("entity: x\nfields: {a: {type: nope}}\n",
                                                encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli("docs", "--site", str(broken), "-o", str(out)) == 1
    assert "x.yaml:2" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- admin pages

@pytest.fixture
def web(database_url, monkeypatch):
    from web import create_app
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    world = World(database_url, site=SITE, root=BARE_ROOT)
    world.users.create("root", "pw-root", ["admin"])
    world.users.create("ann", "pw-ann", ["boss"])
    app = create_app(world.registry, world.engine)
    yield app, world
    world.engine.dispose()


PAGES = ["/admin/dictionary", "/admin/dictionary/references", "/admin/dictionary/permissions",
         "/admin/dictionary/entities/visit"]


def test_admins_see_the_dictionary_and_nobody_else(web):
    from test_web_ui import html, sign_in
    app, world = web
    anonymous = app.test_client()
    for path in PAGES:
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    boss = app.test_client()
    sign_in(boss, "ann")
    for path in PAGES:
        assert boss.get(path).status_code == 403, path
    admin = app.test_client()
    sign_in(admin, "root")
    for path in PAGES:
        response = admin.get(path)
        assert response.status_code == 200, path
        assert "script-src" not in response.headers["Content-Security-Policy"]
        assert re.search(r'href="/admin/dictionary/?"', html(response))  # the admin tab
    assert admin.get("/admin/dictionary/entities/nope").status_code == 404
    users_page = html(admin.get("/admin/users"))
    assert re.search(r'href="/admin/dictionary/?"', users_page)


def test_entity_page_shows_fields_roles_and_the_workflow(web):
    from test_web_ui import html, sign_in
    app, world = web
    admin = app.test_client()
    sign_in(admin, "root")
    page = unescape(html(admin.get("/admin/dictionary/entities/clinic")))
    for name in world.registry.entities["clinic"].fields:
        assert f'data-field="{name}"' in page
    row = re.search(r'<tr id="field-secret_note".*?</tr>', page, re.S).group(0)
    assert "Secret note" in row and "机密备注" in row
    readers = re.search(r'class="roles readers">(.*?)</td>', row, re.S).group(1)
    assert "Boss" in readers and "Hidden from: Medical rep" in readers
    access = re.search(r'<tr data-role="rep">.*?</tr>', page, re.S).group(0)
    assert re.search(r'data-action="read" data-scope="rule">records of a sharing rule'
                     r'<div class="muted">records with a Territory whose rep is the user and '
                     r'territory.clinic = id</div>', access)
    assert 'data-action="update" data-scope="none"' in access

    visit = unescape(html(admin.get("/admin/dictionary/entities/visit")))
    diagram = re.search(r'<pre class="mermaid" data-diagram="workflow">(.*?)</pre>', visit,
                        re.S).group(1)
    assert diagram.startswith("stateDiagram-v2")
    assert "s_planned --> s_cancelled : Cancel (Boss)" in diagram
    assert "[outcome != null && subject != #quot;x#59;y#quot;]" in diagram
    assert '<tr data-transition="cancel">' in visit


def test_permission_matrix_page(web):
    from test_web_ui import html, sign_in
    app, world = web
    admin = app.test_client()
    sign_in(admin, "root")
    page = html(admin.get("/admin/dictionary/permissions"))

    def cell(entity, role):
        row = re.search(rf'<tr data-entity="{entity}">.*?</tr>', page, re.S).group(0)
        td = re.search(rf'<td data-role="{role}">(.*?)</td>', row, re.S).group(1)
        return re.findall(r'data-action="(\w+)" data-scope="(\w+)"', td)

    assert cell("visit", "rep") == [("read", "own"), ("create", "all"), ("update", "own")]
    assert cell("clinic", "rep") == [("read", "rule")]
    assert cell("clinic", "boss") == [(a, "all") for a in ACTIONS]
    assert cell("territory", "rep") == [("read", "rule")]
    rules = re.findall(r'<li value="(\d+)" data-role="(\w+)" data-entity="(\w+)" '
                       r'data-action="(\w+)">(.*?)</li>', unescape(page), re.S)
    assert [(r, e, a) for _, r, e, a, _ in rules] == [("rep", "clinic", "read"),
                                                      ("rep", "territory", "read")]
    assert rules[1][4].endswith("records where rep.id == user.id; or the user's own records")
    chinese = app.test_client()
    sign_in(chinese, "root")
    zh = html(chinese.get("/admin/dictionary/permissions", headers={"Accept-Language": "zh"}))
    assert "各角色对各实体的权限" in zh
