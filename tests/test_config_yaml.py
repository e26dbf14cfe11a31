"""Reading YAML: positions, duplicate keys, YAML 1.1 booleans, bombs and oversized files."""

import time
from pathlib import Path

from engine.config.yamlsource import MAX_FILE_BYTES, parse_yaml_text, read_yaml


def parse(text):
    return parse_yaml_text(text, Path("x.yaml"), "x.yaml")


def test_positions_of_keys_and_values_are_one_based():
    doc, problems = parse("entity: a\nfields:\n  name: {type: string}\n  tags: [x, 'y']\n")
    assert problems == []
    assert doc.position(("fields", "name"), key=True) == (3, 3)
    assert doc.position(("fields", "name", "type")) == (3, 16)
    assert doc.position(("fields", "tags", 1)) == (4, 13)
    # a path that does not exist points at its nearest existing parent's key
    assert doc.position(("fields", "name", "missing")) == (3, 3)


def test_duplicate_keys_are_reported_at_the_second_one():
    doc, problems = parse("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert [(p.line, p.column, p.code) for p in problems] == [
        (4, 3, "yaml-duplicate-key"), (5, 1, "yaml-duplicate-key")]
    assert "first defined on line 3" in problems[0].message
    assert doc.data == {"a": 1, "b": {"c": 1}}


def test_yaml11_booleans_are_flagged_and_explained():
    doc, problems = parse("x: yes\ny: 'no'\nz: true\nw: [on, off]\n")
    assert doc.data == {"x": True, "y": "no", "z": True, "w": [True, False]}
    assert doc.yaml11_bools == {("x",), ("w", 0), ("w", 1)}
    problem = doc.problem(("w", 0), "wrong-type", "must be a text")
    assert "write it in quotes" in problem.message


def test_dates_stay_text_and_unsafe_tags_are_refused():
    doc, problems = parse("d: 2024-01-31\nx: !!python/object/apply:os.system ['true']\n")
    assert doc.data["d"] == "2024-01-31"
    assert [p.code for p in problems] == ["yaml-tag"]


def test_syntax_error_has_position():
    doc, problems = parse("a: [1, 2\nb: 3\n")
    assert doc is None
    assert [(p.line, p.code) for p in problems] == [(2, "yaml-syntax")]


def test_several_documents_in_one_file_are_refused():
    doc, problems = parse("a: 1\n---\nb: 2\n")
    assert doc is None and problems[0].code == "yaml-syntax"


def test_billion_laughs_is_refused_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    started = time.perf_counter()
    doc, problems = parse("\n".join(lines) + "\n")
    assert doc is None
    assert [p.code for p in problems] == ["yaml-too-large"]
    assert time.perf_counter() - started < 5


def test_self_referencing_alias_is_refused():
    doc, problems = parse("&a [*a]\n")
    assert doc is None and problems[0].code == "yaml-too-large"


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write("a: '")
        f.write("x" * (50 * 1024 * 1024))
        f.write("'\n")
    started = time.perf_counter()
    doc, problems = read_yaml(big, "big.yaml")
    assert doc is None
    assert [p.code for p in problems] == ["yaml-too-large"]
    assert "50.0 MB" in problems[0].message and str(MAX_FILE_BYTES // 1048576) in problems[0].message
    assert time.perf_counter() - started < 2


def test_non_utf8_file_is_reported(tmp_path):
    path = tmp_path / "gbk.yaml"
    path.write_bytes("label: 客户\n".encode("gbk"))
    doc, problems = read_yaml(path, "gbk.yaml")
    assert doc is None and problems[0].code == "file-encoding"


def test_merge_keys_are_supported():
    doc, problems = parse("base: &b {type: string, required: true}\nf: {<<: *b, max_length: 9}\n")
    assert problems == []
    assert doc.data["f"] == {"type": "string", "required": True, "max_length": 9}
