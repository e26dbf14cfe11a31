"""Benchmark: how long `crm validate` takes, per pack and on a large synthetic site.

Run by hand:  python bench/validate_bench.py
Prints a Markdown table to paste into bench/README.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import engine  # noqa: E402

RUNS = 7


def wall(cmd: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def in_process(**kwargs) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        engine.load_registry(**kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def synthetic_site(folder: Path, entities: int = 120, fields: int = 30) -> Path:
    """Write a site of `entities` entities with `fields` fields each, expressions included."""
    (folder / "entities").mkdir(parents=True)
    (folder / "workflows").mkdir()
    (folder / "reports").mkdir()
    (folder / "app.yaml").write_text("app: big\nlabel: Big\npack: manufacturing\n")
    for e in range(entities):
        lines = [f"entity: big_{e}", f"label: {{en: Big {e}, zh: 大{e}}}", "fields:",
                 "  name: {type: string, required: true}",
                 "  amount: {type: money, min: 0}",
                 "  quantity: {type: integer, min: 0}",
                 "  total: {type: money, compute: \"double(quantity) * amount\"}",
                 "  customer: {type: reference, to: customer}",
                 "  kind: {type: enum, options: [a, b, c, d]}",
                 "  due: {type: date}"]
        for f in range(fields - 7):
            lines.append(f"  extra_{f}: {{type: string, max_length: 80, "
                         f"visible_if: \"kind == 'a' || amount > {f}.0\"}}")
        lines += ["validations:", "  - rule: \"due == null || days_between(today(), due) > -30\"",
                  "    message: {en: Too late, zh: 太晚}"]
        (folder / "entities" / f"big_{e}.yaml").write_text("\n".join(lines) + "\n")
        (folder / "workflows" / f"flow_{e}.yaml").write_text(
            f"workflow: flow_{e}\nentity: big_{e}\nfield: state\ninitial: open\n"
            "states: {open: {}, doing: {}, done: {final: true}}\n"
            "transitions:\n  start: {from: open, to: doing, require: [amount]}\n"
            "  finish: {from: doing, to: done, guard: \"amount > 0.0\"}\n")
        (folder / "reports" / f"r_{e}.yaml").write_text(
            f"report: r_{e}\nentity: big_{e}\ngroup_by: [kind, due:month]\n"
            "where: \"amount > 10.0\"\nmeasures:\n  n: {agg: count}\n"
            "  value: {agg: sum, field: amount}\n")
    return folder


def main() -> None:
    python = sys.executable
    rows = []
    for pack in engine.available_packs():
        rows.append((f"pack `{pack}` (metadata + pack)",
                     in_process(pack=pack), wall([python, "cli.py", "validate", "--pack", pack])))
    with tempfile.TemporaryDirectory() as tmp:
        site = synthetic_site(Path(tmp) / "big")
        registry = engine.load_registry(site=site)
        label = (f"synthetic site: {len(registry.entities)} entities, "
                 f"{sum(len(e.fields) for e in registry.entities.values())} fields, "
                 f"{len(registry.workflows)} workflows, {len(registry.reports)} reports")
        rows.append((label, in_process(site=site),
                     wall([python, "cli.py", "validate", "--site", str(site)])))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {RUNS} runs\n")
    print("| configuration | load + check in process (s) | `crm validate` wall time (s) |")
    print("|---|---|---|")
    for label, inproc, total in rows:
        print(f"| {label} | {inproc:.3f} | {total:.3f} |")


if __name__ == "__main__":
    main()
