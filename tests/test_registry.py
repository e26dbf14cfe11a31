"""The compiled registry: labels per locale, layers merged, derived views precomputed."""

import engine
from engine.registry.labels import Label, words
from conftest import FIXTURE_ROOT


def test_label_fallbacks():
    assert Label.of({"en": "Customer", "zh": "客户"}, "customer").get("zh") == "客户"
    assert Label.of({"en": "Customer"}, "customer").get("zh") == "Customer"
    assert Label.of(None, "close_date").get("zh") == "Close date"
    assert Label.of("Plain", "x").as_dict() == {"en": "Plain", "zh": "Plain"}
    assert words("expected_close_date") == "Expected close date"


def test_layers_and_summary(tmp_path):
    registry = engine.load_registry(pack="alpha", root=FIXTURE_ROOT)
    assert registry.layers == ("metadata", "beta", "alpha")
    assert [p.name for p in registry.packs] == ["beta", "alpha"]
    assert registry.pack.name == "alpha"
    assert registry.summary() == "4 entities, 1 workflows, 3 roles"
    hospital = registry.entities["hospital"]
    assert hospital.module == "medical" and hospital.title == "name"
    assert hospital.search_fields == ("name",)  # defaults to the title field
    assert hospital.list_columns[0] == "name"


def test_entity_derived_views():
    registry = engine.load_registry(root=FIXTURE_ROOT)
    opp = registry.entities["opportunity"]
    assert opp.label.get("zh") == "商机" and opp.plural.get("en") == "Opportunities"
    assert opp.list_columns == ("name", "customer", "amount", "stage", "close_date")
    assert [s.label.get("en") for s in opp.form_sections] == ["Deal", "Lost"]
    assert opp.form_sections[1].visible_if.source == "stage == 'lost'"
    assert opp.fields["expected"].compute.names == {"amount", "probability"}
    assert opp.fields["customer"].to == "customer"
    assert opp.unique == (("customer", "name"),)
    assert opp.validations[0].message.get("zh") == "预计成交日期早于一年前"
    line = registry.entities["opportunity_line"]
    assert line.is_child and line.parent == "opportunity"
    workflow = registry.workflow_by_entity["opportunity"]
    assert workflow.transitions["lose"].sources == ("prospecting", "qualification", "proposal",
                                                    "negotiation")
    assert [t.name for t in workflow.transitions_from("lost")] == ["reopen"]
    report = registry.reports["win_rate_by_owner"]
    assert report.measures["win_rate"].expr.source.startswith("deals == 0")
    dashboard = registry.dashboards["sales"]
    assert dashboard.widgets[1].metric_agg == "sum"


def test_the_shipped_configuration_compiles():
    for pack in [None] + list(engine.available_packs()):
        registry = engine.load_registry(pack=pack)
        assert registry.entities and registry.roles["admin"]
