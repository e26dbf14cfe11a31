"""Every problem code the checker can report is documented in docs/errors.md."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_error_code_is_documented():
    documented = set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", (REPO / "docs/errors.md").read_text()))
    used = set()
    for path in (REPO / "engine").rglob("*.py"):
        text = path.read_text()
        used.update(re.findall(r'"((?:yaml|file|empty|schema|unknown|missing|wrong|bad|expr|'
                               r'duplicate|reserved|system|key|not|extend|remove|type|pack|app|'
                               r'role|workflow|child|measure|notify|unreachable|assignment|lookup)-[a-z-]+)"', text))
    used |= {f"duplicate-{kind}" for kind in ("workflow", "automation", "report", "dashboard")}
    # the loader and the checker name problems only: any code-like text there is one
    for folder in ("engine/config", "engine/check", "engine/registry"):
        for path in (REPO / folder).rglob("*.py"):
            used.update(re.findall(r'"([a-z]+(?:-[a-z]+)+)"', path.read_text()))
    assert used - documented == set()
