"""The conformance report: a matrix of equation × tier per backend, as JSON and Markdown.

A pytest plugin (`Collector`) records every test's outcome with the equations, tier,
identities and backend its `spec` marker and parametrisation name; `build` folds them into
cells (equation × tier) and into a status per declared identity × tier; `markdown` renders
both. Tier S does not depend on the backend (it runs the code symbolically), so its results
appear under every backend. A run is complete when nothing was deselected (no `-k`, `-m`,
`--lf`): only a complete run can show that an equation or identity has no test.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import backends
import spec
from spec._registry import TIERS

from .compiled import TIERS as COMPILED_TIERS

MARK = {"passed": "✅", "failed": "❌", "skipped": "⏭", "missing": "⚠️", "n/a": "—"}


class Collector:
    """A pytest plugin that keeps one record per test."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._seen: dict[str, dict] = {}
        self.deselected = 0

    def pytest_deselected(self, items) -> None:
        self.deselected += len(items)

    @property
    def complete(self) -> bool:
        """Whether every collected test was selected (a full run, not `-k …`)."""
        return self.deselected == 0

    def pytest_runtest_logreport(self, report) -> None:
        props = dict(report.user_properties)
        if "spec_tier" not in props:
            return
        outcome = report.outcome
        if report.when == "call" or outcome != "passed":
            record = self._seen.get(report.nodeid)
            if record is None:
                record = {
                    "nodeid": report.nodeid,
                    "equations": list(props["spec_equations"]),
                    "tier": props["spec_tier"],
                    "backend": props.get("spec_backend"),
                    "identities": list(props.get("spec_identities", ())),
                    "outcome": outcome,
                    "message": "",
                }
                if "spec_compiled" in props:  # SPEC_COMPILE=1: the equations it ran compiled
                    record["compiled"] = props["spec_compiled"]
                self._seen[report.nodeid] = record
                self.records.append(record)
            if props.get("spec_excused"):  # inputs a documented limit excused; the rest ran
                record["excused"] = list(props["spec_excused"])
            if outcome == "failed":
                record["outcome"] = "failed"
                record["message"] = _short(report.longreprtext)
            elif outcome == "skipped" and record["outcome"] != "failed":
                record["outcome"] = "skipped"
                longrepr = report.longrepr
                reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
                record["message"] = reason.removeprefix("Skipped: ")


def _short(text: str, limit: int = 600) -> str:
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    text = "\n".join(lines) or text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(mine: list[dict]) -> dict:
    """The status of a group of test records: failed > passed > skipped > missing."""
    counts = defaultdict(int)
    for r in mine:
        counts[r["outcome"]] += 1
    reasons = sorted({r["message"] for r in mine if r["outcome"] != "passed" and r["message"]}
                     | {note for r in mine for note in r.get("excused", ())})
    if counts["failed"]:
        status = "failed"
    elif counts["passed"]:
        status = "passed"
    elif counts["skipped"]:
        status = "skipped"
    else:
        status = "missing"
    return {"status": status, **{k: counts[k] for k in ("passed", "failed", "skipped")},
            "reasons": reasons}


def _test_function(nodeid: str) -> str:
    """A test's file and function, without its parametrisation: where a reader finds it."""
    return nodeid.split("[", 1)[0]


def identity_grid(records: list[dict], backend_id: str) -> dict:
    """equation → identity key → tier → cell (with the tests that prove it), for one backend."""
    mine = [r for r in records if r["backend"] in (backend_id, None)]
    by_key: dict = defaultdict(list)
    for r in mine:
        for ident in r.get("identities", ()):
            by_key[(ident, r["tier"])].append(r)
    grid: dict = {}
    for name, rec in spec.catalogue().items():
        grid[name] = {}
        for ident in rec.identities:
            row = {}
            for tier in ident.tiers:
                tests = by_key.get((f"{name}:{ident.key}", tier), [])
                row[tier] = {**_cell(tests),
                             "tests": sorted({_test_function(r["nodeid"]) for r in tests})}
            grid[name][ident.key] = row
    return grid


def build(records: list[dict], backend_list: list, *, exit_code: int, profile: str,
          compiled: bool = False, complete: bool = True) -> dict:
    """The report of a run; `compiled`: whether it ran with SPEC_COMPILE=1; `complete`:
    whether every collected test was selected (only then can a missing test be told)."""
    catalogue = spec.catalogue()
    cells: dict = {}
    for backend in backend_list:
        grid: dict = {}
        for name, rec in catalogue.items():
            row = {}
            for tier in TIERS:
                if tier not in rec.tiers:
                    row[tier] = {"status": "n/a"}
                    continue
                mine = [r for r in records if name in r["equations"] and r["tier"] == tier
                        and r["backend"] in (backend.id, None)]
                row[tier] = _cell(mine)
                status = row[tier]["status"]
                if compiled and tier in COMPILED_TIERS and status in ("passed", "failed"):
                    # did any test run this equation through the compiler?
                    row[tier]["compiled"] = any(name in r.get("compiled", ()) for r in mine)
            grid[name] = row
        cells[backend.id] = grid
    totals = defaultdict(int)
    for r in records:
        totals[r["outcome"]] += 1
    per_tier = {t: defaultdict(int) for t in TIERS}
    for r in records:
        per_tier[r["tier"]][r["outcome"]] += 1
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hypothesis_profile": profile,
        "compiled": compiled,
        "complete": complete,
        "exit_code": exit_code,
        "backends": [
            {"id": b.id, "device": b.device_name(), "versions": b.versions(),
             # TF32 flags, default matmul precision, cuBLAS/cuDNN: as during this run
             "precision": b.precision(),
             "float_dtypes": list(b.float_dtypes),
             "compiled": b.compiler if compiled else "eager"} for b in backend_list
        ],
        "totals": dict(totals),
        "tests_per_tier": {t: dict(c) for t, c in per_tier.items()},
        "matrix": cells,
        "identities": {b.id: identity_grid(records, b.id) for b in backend_list},
        "failures": [r for r in records if r["outcome"] == "failed"],
    }


def _mode(report: dict) -> str:
    if not report.get("compiled"):
        return "Compiled: no — eager run (`SPEC_COMPILE=1` runs tiers P and X compiled)."
    compilers = ", ".join(f"`{b['id']}` {b['compiled']}" for b in report["backends"])
    return (f"Compiled: **yes** (`SPEC_COMPILE=1`) — tiers P and X called the equations "
            f"through `backend.compile`: {compilers}.")


def _identity_section(report: dict, ids: list[str]) -> list[str]:
    """One row per declared identity: its status in each of its tiers, per backend."""
    grids = {b: report.get("identities", {}).get(b) for b in ids}
    grids = {b: g for b, g in grids.items() if g}
    if not grids:
        return []
    first = next(iter(grids.values()))
    counts = defaultdict(lambda: defaultdict(int))
    for grid in grids.values():
        for idents in grid.values():
            for row in idents.values():
                for tier, cell in row.items():
                    counts[tier][cell["status"]] += 1
    summary = "; ".join(f"{t}: {c['passed']} {MARK['passed']} {c['failed']} {MARK['failed']} "
                        f"{c['skipped']} {MARK['skipped']} {c['missing']} {MARK['missing']}"
                        for t, c in sorted(counts.items(), key=lambda kv: list(TIERS).index(kv[0])))
    out = ["## Identities", "",
           "Every identity an equation declares, with its status in each tier that proves it "
           f"(identity × tier × backend: {summary}). The JSON report names the tests.", "",
           "| equation | identity | " + " | ".join(f"`{b}`" for b in grids) + " |",
           "|---|---|" + "---|" * len(grids)]
    for name, idents in first.items():
        for key in idents:
            cells = [" ".join(f"{tier} {MARK[cell['status']]}" for tier, cell in
                              grid[name][key].items()) for grid in grids.values()]
            out.append(f"| `{name}` | `{key}` | " + " | ".join(cells) + " |")
    return [*out, ""]


def gaps(report: dict) -> list[str]:
    """What has no test: equation × tier cells and identity × tier cells, per backend.

    Empty for a run that was not complete (`-k`, `-m`): a deselected test is not a gap."""
    if not report.get("complete", True):
        return []
    out = [f"{b}: {name} tier {tier}" for b, grid in report["matrix"].items()
           for name, row in grid.items() for tier, cell in row.items()
           if cell["status"] == "missing"]
    out += [f"{b}: {name}:{key} tier {tier}" for b, grid in report.get("identities", {}).items()
            for name, idents in grid.items() for key, row in idents.items()
            for tier, cell in row.items() if cell["status"] == "missing"]
    return out


def has_gaps(report: dict) -> bool:
    return bool(gaps(report))


def source_commit() -> str | None:
    """The commit of the code under test (12 hex digits, "+" where the tree has uncommitted
    changes), or None outside a git clone."""
    root = Path(spec.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def markdown(report: dict, backend_ids: list[str] | None = None) -> str:
    ids = backend_ids or [b["id"] for b in report["backends"]]
    totals = report["totals"]
    out = [
        "# Conformance report",
        "",
        f"Created {report['created']}"
        + (f" from commit `{report['commit']}`" if report.get("commit") else "")
        + f" · Python {report['python']} · {report['platform']} · "
        f"Hypothesis profile `{report['hypothesis_profile']}`",
        "",
        _mode(report),
        "",
        f"Tests: {totals.get('passed', 0)} passed, {totals.get('failed', 0)} failed, "
        f"{totals.get('skipped', 0)} skipped (all backends of this run).",
        "",
        "Tiers: " + "; ".join(f"**{t}** {d.split(':')[0]}" for t, d in TIERS.items()) + ".",
        f"Cells: {MARK['passed']} passed (number of tests) · {MARK['failed']} failed · "
        f"{MARK['skipped']} skipped (reason below) · {MARK['missing']} no test · "
        f"{MARK['n/a']} tier does not apply.",
        "",
    ]
    catalogue = spec.catalogue()
    for info in report["backends"]:
        if info["id"] not in ids:
            continue
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        out += [f"## `{info['id']}` on {info['device']}", "", f"{versions}; dtypes "
                f"{', '.join(info['float_dtypes'])}; compiled: {info.get('compiled', 'eager')}",
                ""]
        if info.get("precision"):  # what changes float results without changing the code
            out += ["Precision environment (set for this run: TF32 off, JAX matmuls at "
                    "\"highest\"): " + "; ".join(f"`{k}` = {v}" for k, v in
                                                 info["precision"].items()), ""]
        out.append("| equation | chapter | " + " | ".join(TIERS) + " |")
        out.append("|---|---|" + "---|" * len(TIERS))
        notes: list[str] = []
        for name, row in report["matrix"][info["id"]].items():
            cells = []
            for tier in TIERS:
                cell = row[tier]
                status = cell["status"]
                text = MARK[status]
                if status in ("passed", "failed"):
                    text += f" {cell['passed'] + cell['failed']}"
                for reason in cell.get("reasons", []):
                    if reason not in notes:
                        notes.append(reason)
                    text += f" [{notes.index(reason) + 1}]"
                cells.append(text)
            chapter = catalogue[name].chapter if name in catalogue else ""
            out.append(f"| `{name}` | {chapter} | " + " | ".join(cells) + " |")
        if notes:
            out += ["", "Notes:", ""]
            out += [f"{i}. {n.splitlines()[0] if n else ''}" for i, n in enumerate(notes, 1)]
        eager = [f"`{name}` {tier}" for name, row in report["matrix"][info["id"]].items()
                 for tier, cell in row.items() if cell.get("compiled") is False]
        if eager:
            out += ["", f"Ran eagerly in this compiled run (no test called the equation with an "
                    f"array of `{info['id']}`, so nothing was compiled): {', '.join(eager)}."]
        out.append("")
    out += _identity_section(report, ids)
    failures = [f for f in report["failures"] if f["backend"] in (*ids, None)]
    if failures:
        out += ["## Failures", ""]
        for f in failures:
            out += [f"- `{f['nodeid']}`", "", "  ```", *("  " + line for line in
                                                        f["message"].splitlines()), "  ```"]
    return "\n".join(out) + "\n"


def write(report: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    (directory / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (directory / "report.md").write_text(markdown(report))
    written += [directory / "report.json", directory / "report.md"]
    for info in report["backends"]:
        stem = backends.file_stem(info["id"])
        single = dict(report, backends=[info], matrix={info["id"]: report["matrix"][info["id"]]},
                      failures=[f for f in report["failures"] if f["backend"] in (info["id"],
                                                                                    None)])
        (directory / f"{stem}.json").write_text(json.dumps(single, indent=1, ensure_ascii=False))
        (directory / f"{stem}.md").write_text(markdown(single))
        written += [directory / f"{stem}.json", directory / f"{stem}.md"]
    return written
