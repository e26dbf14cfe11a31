"""Checking lookups: every mistake at its file, line and column, all reported at once."""

from conftest import problems_of

PRICE_ENTRY = """
    entity: price_entry
    fields:
      item: {type: reference, to: item}
      channel: {type: enum, options: [retail, web]}
      note: {type: text}
      price: {type: money}
      code: {type: string}
      from_day: {type: date}
      to_day: {type: string}
      priority: {type: integer}
      tags: {type: multi_enum, options: [a]}
    """
ITEM = "entity: item\nfields: {name: {type: string}}\n"


def test_every_lookup_mistake_is_reported(site):
    path = site({"entities/price_entry.yaml": PRICE_ENTRY, "entities/item.yaml": ITEM,
                 "entities/order.yaml": """
        entity: order
        fields:
          item: {type: reference, to: item}
          customer: {type: reference, to: customer}
          channel: {type: string}
          day: {type: date}
          a:
            type: money
            lookup: {from: price_entri, take: price, match: {item: item}}
          b:
            type: integer
            lookup:
              from: price_entry
              take: price
              match: {itme: item, note: channel, channel: day, item: customer}
          c:
            type: money
            compute: "1.0"
            lookup:
              from: price_entry
              take: price
              match: {item: item}
              valid: [from_day, to_day]
              on: channel
              order: [-priorty, tags]
              where: "code == 'x' ? true : false"
          d:
            type: money
            lookup: {from: price_entry, take: price, match: {code: e}}
          e: {type: string, compute: "string(d)"}
          f:
            type: string
            lookup: {from: price_entry, take: code, match: {item: item}, on: day}
        """})
    assert problems_of(path) == [
        ("entities/order.yaml", 9, 20, "unknown-entity"),
        ("entities/order.yaml", 14, 13, "lookup-type"),     # money cannot fill an integer
        ("entities/order.yaml", 15, 15, "unknown-field"),
        ("entities/order.yaml", 15, 27, "lookup-type"),     # a text field is not matched
        ("entities/order.yaml", 15, 51, "lookup-type"),     # a date is no enum value
        ("entities/order.yaml", 15, 62, "lookup-type"),     # a customer is no item
        ("entities/order.yaml", 19, 5, "lookup-compute"),
        ("entities/order.yaml", 23, 25, "lookup-type"),     # a string as validity bound
        ("entities/order.yaml", 24, 11, "lookup-type"),     # `on` is no date
        ("entities/order.yaml", 25, 15, "unknown-field"),
        ("entities/order.yaml", 25, 25, "not-sortable"),
        ("entities/order.yaml", 26, 27, "expr-not-sql"),  # at the `?`
        ("entities/order.yaml", 29, 5, "lookup-cycle"),     # d -> e -> d
        ("entities/order.yaml", 33, 66, "missing-key"),     # `on` without `valid`
    ]


def test_lines_see_their_parent_and_only_its_own_fields(site, load):
    files = {"entities/price_entry.yaml": PRICE_ENTRY, "entities/item.yaml": ITEM,
             "entities/order.yaml": """
        entity: order
        fields:
          channel: {type: enum, options: [retail, web]}
          lines: {type: lines, entity: order_line}
        """, "entities/order_line.yaml": """
        entity: order_line
        parent: order
        fields:
          item: {type: reference, to: item}
          price:
            type: money
            lookup:
              from: price_entry
              take: price
              match: {item: item, channel: parent.channel}
              order: [-priority, id]
              where: "channel == 'web' && priority > 0"
        """}
    registry = load(site(files))
    lookup = registry.entities["order_line"].fields["price"].lookup
    assert (lookup.inputs, lookup.parent_inputs) == ({"item"}, {"channel"})
    assert lookup.order == (("priority", True), ("id", False))
    files["entities/order_line.yaml"] = files["entities/order_line.yaml"].replace(
        "parent.channel", "parent.chanel").replace("priority > 0", "user.id > 0")
    assert problems_of(site(files)) == [
        ("entities/order_line.yaml", 10, 43, "expr-unknown-name"),
        ("entities/order_line.yaml", 12, 35, "expr-unknown-name"),  # candidates: no `user`
    ]
