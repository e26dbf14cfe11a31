"""The configuration commands: crm packs, init, validate and schema (CLI.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import FIXTURE_ROOT, FIXTURES

REPO = Path(__file__).resolve().parents[1]


def crm(*args, env_extra=None, cwd=REPO):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=60)


def test_validate_reports_every_mistake_at_its_place_and_exits_1():
    broken = FIXTURES / "sites" / "broken"
    result = crm("validate", "--site", "tests/fixtures/sites/broken",
                 env_extra={"CRM_CONTENT_ROOT": str(FIXTURE_ROOT)})
    assert result.returncode == 1
    expected = (broken / "expected.txt").read_text().splitlines()
    assert result.stdout.splitlines() == expected
    assert len(expected) >= 12
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"crm: {len(expected)} problems in the configuration"


def test_validate_ok_line_and_options_after_or_before_the_command(tmp_path):
    site = tmp_path / "acme"
    assert crm("init", str(site), "--pack", "manufacturing").returncode == 0
    for args in (("validate", "--site", str(site)), ("--site", str(site), "validate")):
        result = crm(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("OK: ") and " entities, " in result.stdout
    result = crm("validate", env_extra={"CRM_SITE": str(site)})
    assert result.returncode == 0


def test_validate_missing_site_exits_1(tmp_path):
    result = crm("validate", "--site", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "app.yaml" in result.stdout


def test_init_refuses_non_empty_folder_and_unknown_pack(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    result = crm("init", str(tmp_path / "full"), "--pack", "manufacturing")
    assert result.returncode == 1 and "not empty" in result.stderr
    result = crm("init", str(tmp_path / "new"), "--pack", "manufactoring")
    assert result.returncode == 1 and "did you mean 'manufacturing'" in result.stderr
    assert not (tmp_path / "new").exists()


def test_init_writes_the_editor_schema_line(tmp_path):
    site = tmp_path / "s"
    assert crm("init", str(site), "--pack", "manufacturing").returncode == 0
    app = (site / "app.yaml").read_text()
    assert app.startswith("# yaml-language-server: $schema=.crm/config.schema.json\n")
    schema = json.loads((site / ".crm" / "config.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert (site / "entities").is_dir()


def test_packs_lists_identifier_label_and_additions():
    result = crm("packs")
    assert result.returncode == 0
    line = next(l for l in result.stdout.splitlines() if l.startswith("manufacturing\t"))
    assert "Manufacturing / 制造业" in line and "adds" in line


def test_schema_command_writes_valid_json_schema(tmp_path):
    out = tmp_path / "schema.json"
    assert crm("schema", "-o", str(out)).returncode == 0
    schema = json.loads(out.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    printed = json.loads(crm("schema").stdout)
    assert printed == schema


def test_errors_are_one_sentence_without_traceback(tmp_path):
    result = crm("validate", "--pack", "nope")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    result = crm("no-such-command")
    assert result.returncode != 0 and "Traceback" not in result.stderr
