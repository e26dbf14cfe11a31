"""export_rows with a list query: the list's filters, search and sort, every keyset page,
read permissions and formula neutralising as in the plain export."""

import io

from engine.records.listing import parse_query
from engine.records.transfer import export_rows, map_columns, write_csv


def test_export_rows_follows_a_list_query_over_every_page(world):
    admin = world.user("admin1", "admin")
    rep = world.user("rep1", "rep")
    for number in range(1203):
        owner = rep if number % 3 == 0 else admin
        world.service.create(owner, "account", {"name": f"N{number:04d}", "employees": number,
                                                "tier": "b" if number % 2 else "c"})
    world.service.create(rep, "account", {"name": "=1+2", "tier": "b", "employees": 5000})

    rows = list(export_rows(world.service, admin, "account",
                            parse_query({"tier": "b", "employees__gte": "100",
                                         "sort": "-employees", "limit": "3"})))
    header, data = rows[0], rows[1:]
    name, employees = header.index("name"), header.index("employees")
    expected = [n for n in range(1202, 99, -1) if n % 2]
    assert [r[employees] for r in data] == [5000] + expected  # past 500: every page, in order
    assert data[0][name] == "=1+2"  # typed cells; writing them neutralises the formula
    out = io.StringIO()
    assert write_csv(iter(rows), out) == len(data)
    assert "'=1+2" in out.getvalue()

    # a rep: only their own records, and never the field hidden from them
    own = list(export_rows(world.service, rep, "account", parse_query({"q": "N0"})))
    assert "secret" not in own[0]
    assert {r[own[0].index("employees")] % 3 for r in own[1:]} == {0}
    assert len(own) - 1 == len([n for n in range(1000) if n % 3 == 0])

    # no query: every readable record by id, as `crm export` writes them
    everything = list(export_rows(world.service, admin, "account"))
    ids = [r[0] for r in everything[1:]]
    assert len(ids) == 1204 and ids == sorted(ids)


def test_the_web_exports_label_headers_map_back_to_fields(world):
    from web.listing_ui import export_headers
    entity = world.registry.entities["account"]
    header = list(export_rows(world.service, world.user("admin1", "admin"), "account"))[0]
    for locale in ("en", "zh"):
        labelled = export_headers(entity, header, locale)
        assert map_columns(entity, labelled) == header
