"""Checking entities: every mistake is reported at its file, line and column, all at once."""

import pytest

import engine
from conftest import FIXTURE_ROOT, problems_of


def test_valid_fixture_root_compiles(site, load):
    registry = load(site({}))
    assert set(registry.entities) == {"customer", "opportunity", "opportunity_line"}
    opp = registry.entities["opportunity"]
    assert opp.fields["stage"].option_values == ("prospecting", "qualification", "proposal",
                                                 "negotiation", "won", "lost")
    assert opp.fields["stage"].default == "prospecting"
    assert opp.workflow == "opportunity_pipeline"
    assert opp.list_sort == (("close_date", True),)
    assert opp.fields["total"].rollup_of == "lines"


def test_field_level_mistakes_are_all_reported(site):
    path = site({"entities/visit.yaml": """
        entity: visit
        fields:
          subject: {type: string, max_length: 80}
          customer: {type: reference, to: custmer}
          score: {type: integer, min: 10, max: 1}
          kind: {type: enum}
          notes: {type: text, unique: true}
          amount: {type: money, options: [a]}
          owner: {type: string}
          bad__name: {type: string}
          code: {type: string, pattern: "([a-z"}
          level: {type: enum, options: [a, b, a]}
          due: {type: date, default: "not a date"}
          count: {type: integer, default: "x"}
        """})
    assert problems_of(path) == [
        ("entities/visit.yaml", 4, 35, "unknown-entity"),
        ("entities/visit.yaml", 5, 31, "bad-value"),
        ("entities/visit.yaml", 6, 3, "missing-key"),
        ("entities/visit.yaml", 7, 23, "key-not-for-type"),
        ("entities/visit.yaml", 8, 25, "key-not-for-type"),
        ("entities/visit.yaml", 9, 3, "system-field"),
        ("entities/visit.yaml", 10, 3, "bad-identifier"),
        ("entities/visit.yaml", 11, 33, "bad-pattern"),
        ("entities/visit.yaml", 12, 39, "duplicate-option"),
        ("entities/visit.yaml", 13, 35, "expr-syntax"),
        ("entities/visit.yaml", 14, 36, "expr-unknown-name"),
    ]


def test_did_you_mean_for_unknown_reference():
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=FIXTURE_ROOT.parent / "sites" / "broken", root=FIXTURE_ROOT)
    messages = [p.message for p in caught.value.problems]
    assert "field 'hospital': reference to unknown entity 'hospitl' (did you mean 'hospital'?)" \
        in messages


def test_entity_level_mistakes(site):
    path = site({
        "entities/meta.yaml": "entity: meta\nfields: {x: {type: string}}\n",
        "entities/dup.yaml": "entity: customer\nfields: {x: {type: string}}\n",
        "entities/box.yaml": """
            entity: box
            title: nme
            fields:
              name: {type: string}
              notes: {type: text}
              lines: {type: lines, entity: customer}
            list: {columns: [name, colour], sort: "-notes"}
            search: [name, missing]
            indexes: [[name, nope]]
            form: {sections: [{fields: [name, gone]}]}
            """,
    })
    assert problems_of(path) == [
        ("entities/box.yaml", 2, 8, "unknown-field"),
        ("entities/box.yaml", 6, 32, "not-a-child"),
        ("entities/box.yaml", 7, 24, "unknown-field"),
        ("entities/box.yaml", 7, 39, "not-sortable"),
        ("entities/box.yaml", 8, 16, "unknown-field"),
        ("entities/box.yaml", 9, 18, "unknown-field"),
        ("entities/box.yaml", 10, 35, "unknown-field"),
        ("entities/dup.yaml", 1, 9, "duplicate-entity"),
        ("entities/meta.yaml", 1, 9, "reserved-name"),
    ]


def test_extensions_merge_and_check(site, load):
    registry = load(site({}, app="app: s\npack: beta\n"))
    customer = registry.entities["customer"]
    assert list(customer.fields) == ["name", "grade", "credit_limit", "country"]
    assert customer.fields["grade"].option_values == ("vip", "a", "b", "c")
    assert "fax" in customer.removed_fields and "fax" not in customer.fields
    assert customer.fields["country"].required


def test_extension_mistakes(site):
    path = site({
        "entities/a.yaml": "extend: custmer\nfields: {x: {type: string}}\n",
        "entities/b.yaml": """
            extend: customer
            fields:
              name: {type: integer}
              gone: {remove: true}
              new_one: {label: No type}
              credit_limit: {type: decimal}
            """,
    }, app="app: s\npack: beta\n")
    assert problems_of(path) == [
        ("entities/a.yaml", 1, 9, "extend-unknown"),
        ("entities/b.yaml", 3, 16, "type-change"),
        ("entities/b.yaml", 4, 3, "remove-unknown"),
        ("entities/b.yaml", 5, 3, "missing-key"),
    ]


def test_expression_checks_in_entities(site):
    path = site({"entities/deal.yaml": """
        entity: deal
        fields:
          name: {type: string}
          amount: {type: money}
          quantity: {type: integer}
          customer: {type: reference, to: customer}
          ok1: {type: money, compute: "amount / 100.0"}
          bad1: {type: money, compute: "amount / 100"}
          bad2: {type: boolean, visible_if: "amount"}
          bad3: {type: string, required_if: "customer.grde == 'a'"}
          bad4: {type: string, read_only_if: "quantity > 1 &&& true"}
          bad5: {type: money, compute: "'text' + 1"}
          ok2: {type: string, visible_if: "customer.grade in ['a', 'b'] && user.id > 0"}
          ok3: {type: integer, default: 3}
          ok4: {type: date, default: "today()"}
        validations:
          - rule: "amount > 0.0 || days_between(created_at, now()) < 3"
          - rule: "size(name) > 2 && unknownfn(name)"
        """})
    assert problems_of(path) == [
        ("entities/deal.yaml", 8, 32, "expr-type"),
        ("entities/deal.yaml", 9, 37, "expr-not-boolean"),
        ("entities/deal.yaml", 10, 47, "expr-unknown-name"),
        ("entities/deal.yaml", 11, 54, "expr-syntax"),
        ("entities/deal.yaml", 12, 32, "expr-type"),
        ("entities/deal.yaml", 18, 30, "expr-unknown-function"),
    ]


def test_rollup_checks(site):
    path = site({
        "entities/invoice.yaml": """
            entity: invoice
            fields:
              name: {type: string}
              items: {type: lines, entity: invoice_item}
              total: {type: rollup, of: items, field: amount, agg: sum}
              bad_of: {type: rollup, of: nothing, field: amount, agg: sum}
              bad_field: {type: rollup, of: items, field: label, agg: avg}
              no_field: {type: rollup, of: items, agg: max}
              paid: {type: rollup, of: payment.invoice, field: amount, agg: sum, where: "amount > 0.0"}
              bad_where: {type: rollup, of: payment.invoice, field: amount, agg: sum, where: "amount > 0.0 ? true : false"}
              last_day: {type: rollup, of: items, field: day, agg: max}
            """,
        "entities/invoice_item.yaml": """
            entity: invoice_item
            parent: invoice
            fields:
              label: {type: string}
              amount: {type: money}
              day: {type: date}
            """,
        "entities/payment.yaml": """
            entity: payment
            fields:
              invoice: {type: reference, to: invoice}
              amount: {type: money}
            """,
    })
    assert problems_of(path) == [
        ("entities/invoice.yaml", 6, 30, "bad-rollup"),
        ("entities/invoice.yaml", 7, 47, "bad-rollup"),
        ("entities/invoice.yaml", 8, 3, "missing-key"),
        ("entities/invoice.yaml", 10, 96, "expr-not-sql"),
        ("entities/invoice.yaml", 11, 46, "bad-rollup"),
    ]


def test_autonumber_patterns(site, load):
    good = site({"entities/quote.yaml": """
        entity: quote
        fields:
          number: {type: autonumber, pattern: "QT-{YYYY}{MM}-{seq:5}"}
        """})
    assert load(good).entities["quote"].fields["number"].number_pattern == "QT-{YYYY}{MM}-{seq:5}"
    (good / "entities/bad.yaml").write_text(
        'entity: bad\nfields:\n  n: {type: autonumber, pattern: "X-{YEAR}"}\n'
        '  m: {type: autonumber, pattern: "X-{YYYY}"}\n')
    assert problems_of(good) == [("entities/bad.yaml", 3, 34, "bad-pattern"),
                                 ("entities/bad.yaml", 4, 34, "bad-pattern")]


def test_map_keys_must_be_identifiers(site):
    path = site({"entities/a.yaml": 'entity: a\nfields: {Name: {type: string}, "客户": {type: string}}\n',
                 "roles.yaml": "roles:\n  'Boss Man': {}\n"})
    assert problems_of(path) == [("entities/a.yaml", 2, 10, "bad-identifier"),
                                 ("entities/a.yaml", 2, 32, "bad-identifier"),
                                 ("roles.yaml", 2, 3, "bad-identifier")]


def test_a_widening_type_change_drops_keys_the_new_type_does_not_take(site, load):
    registry = load(site({"entities/c.yaml": "extend: customer\nfields: {grade: {type: string}}\n"}))
    assert registry.entities["customer"].fields["grade"].type == "string"
    assert registry.entities["customer"].fields["grade"].options == ()


def test_expression_details(site):
    path = site({"entities/t.yaml": """
        entity: t
        fields:
          name: {type: string}
          customer: {type: reference, to: opportunity}
          items: {type: lines, entity: t_line}
          a: {type: boolean, compute: "items.exists(l, l.quantity > 5)"}
          b: {type: integer, compute: "max(1, 2)"}
          d: {type: string, compute: "customer.customer.name"}
          f: {type: date, default: "2024-13-01"}
          g: {type: string, default: 0012}
          h: {type: json, default: {source: import}}
          i: {type: date, default: "today()"}
        """, "entities/t_line.yaml": "entity: t_line\nparent: t\nfields: {quantity: {type: integer}}\n",
        "automations/x.yaml": """
            automation: x
            entity: t
            when: {event: created}
            do: [{create: {entity: t_line}}]
            """})
    assert problems_of(path) == [
        ("automations/x.yaml", 4, 24, "child-entity"),
        ("entities/t.yaml", 7, 32, "expr-unknown-function"),
        ("entities/t.yaml", 8, 49, "expr-unknown-name"),
        ("entities/t.yaml", 9, 28, "bad-default"),
        ("entities/t.yaml", 10, 30, "bad-default"),
    ]


def test_site_app_yaml_with_a_pack_validates_against_the_published_schema(tmp_path):
    import jsonschema
    validator = jsonschema.Draft7Validator(engine.combined_schema())
    assert not list(validator.iter_errors({"app": "b1", "label": "B1", "pack": "manufacturing",
                                           "locale": "en"}))
