"""Checking workflows, automations, roles, reports and dashboards."""

from conftest import problems_of


def test_workflow_mistakes(site):
    path = site({"workflows/visit.yaml": """
        workflow: visit_flow
        entity: customer
        field: visit_state
        initial: planned
        states:
          planned: {label: {en: Planned, zh: 计划}}
          done: {final: true}
          archived: {}
          orphan: {}
        transitions:
          finish: {from: planned, to: don}
          close: {from: [planned, nowhere], to: done, roles: [nobody]}
          archive: {from: done, to: archived, require: [nme], guard: "grade == 1"}
          touch: {from: "*", to: planned, set: {grade: "'x' + 1", nope: "1", visit_state: "'done'"}}
        """})
    assert problems_of(path) == [
        ("workflows/visit.yaml", 9, 3, "unreachable-state"),
        ("workflows/visit.yaml", 11, 31, "unknown-state"),
        ("workflows/visit.yaml", 12, 27, "unknown-state"),
        ("workflows/visit.yaml", 12, 55, "unknown-role"),
        ("workflows/visit.yaml", 13, 49, "unknown-field"),
        ("workflows/visit.yaml", 14, 48, "expr-type"),
        ("workflows/visit.yaml", 14, 59, "unknown-field"),
        ("workflows/visit.yaml", 14, 70, "not-writable"),
    ]


def test_workflow_on_unknown_entity_and_non_enum_field(site):
    path = site({
        "workflows/a.yaml": """
            workflow: a
            entity: custmer
            field: state
            initial: x
            states: {x: {}}
            transitions: {}
            """,
        "workflows/b.yaml": """
            workflow: b
            entity: customer
            field: name
            initial: x
            states: {x: {}}
            transitions: {}
            """,
        "workflows/c.yaml": """
            workflow: c
            entity: opportunity
            field: phase
            initial: y
            states: {x: {}}
            transitions: {}
            """,
    })
    assert problems_of(path) == [
        ("workflows/a.yaml", 2, 9, "unknown-entity"),
        ("workflows/b.yaml", 3, 8, "workflow-field"),
        ("workflows/c.yaml", 2, 9, "duplicate-workflow"),
    ]


def test_lead_conversion_create_with_aliases_compiles(site, load):
    registry = load(site({
        "entities/lead.yaml": """
            entity: lead
            fields:
              company: {type: string, required: true}
              contact_name: {type: string}
              customer: {type: reference, to: customer}
            """,
        "workflows/lead.yaml": """
            workflow: lead_flow
            entity: lead
            field: status
            initial: new
            states: {new: {}, converted: {final: true}}
            transitions:
              convert:
                from: new
                to: converted
                create:
                  - entity: customer
                    as: new_customer
                    values: {name: "company"}
                  - entity: opportunity
                    as: deal
                    values: {name: "company + ' - first deal'", customer: "new_customer.id"}
                set: {customer: "new_customer.id"}
            """,
    }))
    convert = registry.workflows["lead_flow"].transitions["convert"]
    assert [c.alias for c in convert.create] == ["new_customer", "deal"]
    assert set(convert.set) == {"customer"}


def test_create_mistakes(site):
    path = site({
        "entities/lead.yaml": "entity: lead\nfields: {company: {type: string}}\n",
        "workflows/lead.yaml": """
            workflow: lead_flow
            entity: lead
            field: status
            initial: new
            states: {new: {}, converted: {}}
            transitions:
              convert:
                from: new
                to: converted
                create:
                  - {entity: custmer}
                  - {entity: opportunity_line}
                  - {entity: customer, values: {name: "later.name"}}
                  - {entity: customer, as: later, values: {nam: "company"}}
            """,
    })
    assert problems_of(path) == [
        ("workflows/lead.yaml", 11, 18, "unknown-entity"),
        ("workflows/lead.yaml", 12, 18, "child-entity"),
        ("workflows/lead.yaml", 13, 44, "expr-unknown-name"),
        ("workflows/lead.yaml", 14, 48, "unknown-field"),
    ]


def test_automation_mistakes(site, load):
    path = site({
        "automations/a.yaml": """
            automation: a
            entity: opportunity
            when: {schedule: every 15m}
            condition: "amount > 1000.0"
            do:
              - transition: win
              - set: {probability: "50"}
              - notify: {role: sales_manager, message: {en: Big deal, zh: 大单}}
              - notify: {to: owner, message: Yours}
              - create: {entity: customer, values: {name: "name"}}
            """,
        "automations/b.yaml": """
            automation: b
            entity: opportunity
            when: {event: {transition: winn}}
            condition: "amount"
            do:
              - transition: close
              - notify: {role: nobody, message: x}
              - notify: {to: customer, message: x}
              - notify: {message: x}
              - set: {stage: "'won'"}
            """,
        "automations/c.yaml": """
            automation: c
            entity: opportunity
            when: {schedule: "daily at 25:00"}
            do: [{notify: {to: owner, message: x}}]
            """,
        "automations/d.yaml": """
            automation: d
            entity: opportunity
            when: {event: updated, schedule: every 1h}
            do: [{frobnicate: true}]
            """,
    })
    assert problems_of(path) == [
        ("automations/b.yaml", 3, 28, "unknown-transition"),
        ("automations/b.yaml", 4, 12, "expr-not-boolean"),
        ("automations/b.yaml", 6, 17, "unknown-transition"),
        ("automations/b.yaml", 7, 20, "unknown-role"),
        ("automations/b.yaml", 8, 18, "notify-target"),
        ("automations/b.yaml", 9, 5, "notify-target"),
        ("automations/b.yaml", 10, 11, "not-writable"),
        ("automations/c.yaml", 3, 18, "bad-schedule"),
        ("automations/d.yaml", 3, 7, "bad-value"),
        ("automations/d.yaml", 4, 6, "wrong-type"),
    ]
    for name in ("b", "c", "d"):
        (path / f"automations/{name}.yaml").unlink()
    automation = load(path).automations["a"]
    assert automation.schedule_seconds == 900
    assert [a.kind for a in automation.actions] == ["transition", "set", "notify", "notify",
                                                   "create"]


def test_roles_inherit_and_merge(site, load):
    registry = load(site({"roles.yaml": """
        roles:
          sales_rep:
            entities:
              opportunity: {delete: false}
          regional_manager:
            inherits: [sales_manager]
            entities:
              customer: {delete: false}
            fields:
              opportunity.amount: hidden
        """}))
    rep = registry.roles["sales_rep"]
    assert rep.entities["opportunity"].delete is None  # the site took it away
    assert rep.entities["opportunity"].read == "own"  # the rest of metadata's entry stays
    manager = registry.roles["sales_manager"]
    assert manager.entities["customer"].create == "all"  # inherited from sales_rep
    assert manager.entities["customer"].read == "all"
    regional = registry.roles["regional_manager"]
    assert regional.entities["customer"].delete is None
    assert regional.entities["customer"].change_owner == "all"
    assert regional.fields == {"customer.credit_limit": "read", "opportunity.amount": "hidden"}
    assert registry.roles["admin"].entities["opportunity"].delete == "all"


def test_role_mistakes(site):
    path = site({"roles.yaml": """
        roles:
          admin: {}
          a:
            inherits: [b]
            entities:
              custmer: {read: all}
              opportunity_line: {read: all}
            fields:
              customer.nme: hidden
              nothing: read
          b:
            inherits: [a, ghost]
        """})
    assert problems_of(path) == [
        ("roles.yaml", 2, 3, "reserved-name"),
        ("roles.yaml", 3, 3, "role-cycle"),
        ("roles.yaml", 6, 7, "unknown-entity"),
        ("roles.yaml", 7, 7, "child-entity"),
        ("roles.yaml", 9, 7, "unknown-field"),
        ("roles.yaml", 10, 7, "unknown-field"),
        ("roles.yaml", 12, 19, "unknown-role"),
    ]


def test_report_and_dashboard_mistakes(site, load):
    path = site({
        "reports/ok.yaml": """
            report: pipeline
            entity: opportunity
            where: "stage != 'lost' && amount > 0.0 && customer.grade in ['a', 'b']"
            group_by: [stage, close_date:month, owner]
            measures:
              deals: {agg: count}
              value: {agg: sum, field: amount}
              average: {agg: avg, field: amount}
              share: {expr: "deals == 0 ? 0.0 : value / double(deals)"}
            sort: -value
            chart: funnel
            """,
        "reports/bad.yaml": """
            report: bad
            entity: opportunity
            where: "size(name) % 2 == 0"
            group_by: [stag, name:month]
            measures:
              a: {agg: sum, field: name}
              b: {agg: count, expr: "1"}
              c: {expr: "a + 1"}
              d: {agg: max}
              e: {agg: count, where: "[1][0] == 1"}
            sort: -zzz
            """,
        "dashboards/d.yaml": """
            dashboard: d
            roles: [sales_manager, nobody]
            widgets:
              - report: pipeline
              - report: pipelin
              - {metric: {entity: opportunty, agg: count}}
              - {metric: {entity: opportunity, agg: sum, field: name}}
            """,
    })
    assert problems_of(path) == [
        ("dashboards/d.yaml", 2, 24, "unknown-role"),
        ("dashboards/d.yaml", 5, 13, "unknown-report"),
        ("dashboards/d.yaml", 6, 23, "unknown-entity"),
        ("dashboards/d.yaml", 7, 53, "bad-measure"),
        ("reports/bad.yaml", 3, 20, "expr-not-sql"),
        ("reports/bad.yaml", 4, 12, "unknown-field"),
        ("reports/bad.yaml", 4, 18, "bad-bucket"),
        ("reports/bad.yaml", 6, 24, "bad-measure"),
        ("reports/bad.yaml", 7, 3, "measure-kind"),
        ("reports/bad.yaml", 8, 14, "expr-unknown-name"),
        ("reports/bad.yaml", 9, 3, "missing-key"),
        ("reports/bad.yaml", 10, 30, "expr-not-sql"),
        ("reports/bad.yaml", 11, 7, "unknown-field"),
    ]
    for name in ("reports/bad.yaml", "dashboards/d.yaml"):
        (path / name).unlink()
    report = load(path).reports["pipeline"]
    assert [(g.field, g.bucket) for g in report.group_by] == [("stage", None),
                                                             ("close_date", "month"),
                                                             ("owner", None)]
    assert report.measures["deals"].format == "integer"
    assert report.sort == (("value", True),)


def test_duplicates_across_files_in_one_layer_and_override_across_layers(site, load):
    path = site({
        "reports/one.yaml": "report: pipeline\nentity: customer\nmeasures: {n: {agg: count}}\n",
        "reports/two.yaml": "report: pipeline\nentity: customer\nmeasures: {n: {agg: count}}\n",
    })
    assert problems_of(path) == [("reports/two.yaml", 1, 9, "duplicate-report")]
    (path / "reports/two.yaml").unlink()
    (path / "reports/one.yaml").write_text(
        "report: win_rate_by_owner\nentity: customer\nmeasures: {n: {agg: count}}\n")
    assert load(path).reports["win_rate_by_owner"].entity == "customer"  # the site's replaces
