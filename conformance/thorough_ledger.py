"""The ledger of thorough runs: what the whole suite at 10,000 examples has covered, per backend.

    python -m conformance.thorough_ledger add RUN.xml [RUN.xml ...] --label "numpy, shard 1 of 4"
    python -m conformance.thorough_ledger add RUN.xml --label "..." --collect numpy,torch
    python -m conformance.thorough_ledger render [--collect numpy,torch,jax,array_api_strict,dask]

The whole suite at the `thorough` profile takes hours a backend, so it runs in pieces: thorough
shards (`pytest --thorough-shard KEY --shard-budget S --shard-test-seconds T`, see shard.py),
each writing a JUnit XML file (`--junitxml=RUN.xml -o junit_family=xunit1`). `add` merges the
test cases of such files into `ledger.json` of the ledger folder (default
docs/results/conformance/thorough/) and writes its `README.md`; `render` writes the README
again from the ledger alone.

The ledger keeps one entry per (test id, backend), the latest run of that test replacing an
earlier one: outcome (passed, failed, skipped; with the first line of the failure's message),
examples drawn (the shard's `thorough_examples` property), whether the test was stopped at its
time share with every example passed (`thorough_cut`), duration, the date of its run (the XML's
testsuite timestamp), the commit and the label. A failure is also kept, for good, in the list of
failures found, with its counter-example; the README marks it fixed once a later run of the same
test passes. Each file added is one run: label, date, commit, host, tests, examples, wall time
(the testsuite's time) and failures.

The backend of a test case is its `spec_backend` property (conformance/plugin.py tags every
test with a `spec` marker), else the first part of its parameter id that is a backend id
(`test_property[torch-dot-...-float16]`), else `add --backend`.

`--collect BACKEND,...` runs `pytest --collect-only -q --thorough-shard x conformance` with
`SPEC_BACKEND` set to each backend: the shard deselects every test but the Hypothesis ones, so
what is listed is the suite the thorough runs must cover. The lists are kept in the ledger
("suite") with the date and commit of the collection, and the README says, per backend, which
tests have never run and whether a full run (every test of the suite) has completed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["FULL_EXAMPLES", "add", "backend_summary", "collect_suite", "empty_ledger",
           "load", "main", "markdown", "parse_junit", "render", "save"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LEDGER = Path("docs/results/conformance/thorough")
FULL_EXAMPLES = 10_000  # the thorough profile's max_examples (conformance/settings.py)
FORMAT = 1
OUTCOMES = ("passed", "failed", "skipped")


class LedgerError(Exception):
    """A file or a test case the ledger cannot take, said in words."""


# ----------------------------------------------------------------------------- the ledger file
def empty_ledger() -> dict:
    """A ledger with nothing in it."""
    return {"format": FORMAT, "suite": {}, "tests": {}, "failures": [], "runs": []}


def load(folder: Path) -> dict:
    """The ledger of `folder` (`ledger.json`), or an empty one if there is none yet."""
    path = Path(folder) / "ledger.json"
    if not path.is_file():
        return empty_ledger()
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise LedgerError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
    return {**empty_ledger(), **data}


def save(ledger: dict, folder: Path) -> Path:
    """Write `ledger.json` in `folder` (created if need be), keys sorted for stable diffs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ledger.json"
    path.write_text(json.dumps(ledger, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def source_commit() -> str | None:
    """The commit of the working tree (conformance.report's: 12 hex digits, "+" if it has
    uncommitted changes), or None outside a git clone."""
    from .report import source_commit as commit

    return commit()


# ----------------------------------------------------------------------------- reading JUnit XML
def _date(timestamp: str | None) -> str:
    """A testsuite timestamp as ISO 8601 in UTC, to the second (naive stamps are taken as
    local time, as pytest wrote them before 8.x)."""
    if not timestamp:
        raise LedgerError("the testsuite has no timestamp: cannot date the run")
    when = _dt.datetime.fromisoformat(timestamp)
    if when.tzinfo is None:
        when = when.astimezone()
    return when.astimezone(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _nodeid(case: ET.Element) -> str | None:
    """The pytest node id of a <testcase> (xunit1 gives the file; classname is the dotted
    module, then any classes), or None for a collection error (no classname)."""
    classname, name = case.get("classname", ""), case.get("name", "")
    if not classname:
        return None
    file = case.get("file")
    parts = classname.split(".")
    if file and file.endswith(".py"):
        module = file[:-3].replace("/", ".")
        classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") \
            else []
    else:  # no file attribute: classes are the capitalised trailing parts
        cut = len(parts)
        while cut > 1 and parts[cut - 1][:1].isupper():
            cut -= 1
        file = "/".join(parts[:cut]) + ".py"
        classes = parts[cut:]
    return "::".join([file, *[c for c in classes if c], name])


def backend_of(nodeid: str, props: dict, default: str | None = None) -> str | None:
    """The backend a test case ran on: its `spec_backend` property, else the first part of
    its parameter id that is a backend id, else `default`."""
    tagged = props.get("spec_backend")
    if tagged and tagged != "None":
        return tagged
    import backends

    params = nodeid[nodeid.index("[") + 1:-1] if nodeid.endswith("]") and "[" in nodeid else ""
    for part in params.split("-"):
        if part in backends.IDS:
            return part
    return default


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


_BLOB = re.compile(r"@reproduce_failure\([^)]*\)")


def counter_example(text: str, limit: int = 40) -> str:
    """From a failure's text, Hypothesis's falsifying example (the call with its arguments)
    and the `@reproduce_failure` blob where it printed one; '' if there is neither."""
    lines = [re.sub(r"^E {0,7}", "", line) for line in (text or "").splitlines()]
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(("Falsifying example:", "Failing test case:",
                            "Falsifying explicit example:")):
            block = [line]
            for more in lines[i + 1:]:
                block.append(more)
                if more.rstrip() == ")" or not more.strip():
                    break
            kept = block[:limit]
            break
    blob = _BLOB.search(text or "")
    if blob:
        kept.append(blob.group(0))
    return "\n".join(line.rstrip() for line in kept).strip()


def _case(case: ET.Element) -> tuple[dict, dict]:
    """Outcome, message, counter-example, examples, cut and duration of one <testcase>; also
    its properties."""
    props = {p.get("name"): p.get("value") for p in case.iterfind("properties/property")}
    entry = {"outcome": "passed", "message": "", "examples": None, "cut": False,
             "duration": round(float(case.get("time") or 0.0), 3)}
    if props.get("thorough_examples") is not None:
        entry["examples"] = int(props["thorough_examples"])
    entry["cut"] = props.get("thorough_cut") == "True"
    bad = case.find("failure")
    if bad is None:
        bad = case.find("error")
    skipped = case.find("skipped")
    if bad is not None:
        entry["outcome"] = "failed"
        entry["message"] = _first_line(bad.get("message")) or _first_line(bad.text)
        if bad.tag == "error":
            entry["message"] = f"error: {entry['message']}"
        entry["counter_example"] = counter_example(
            f"{bad.get('message') or ''}\n{bad.text or ''}")
    elif skipped is not None:
        entry["outcome"] = "skipped"
        entry["message"] = _first_line(skipped.get("message")) or _first_line(skipped.text)
    return entry, props


def parse_junit(path: Path, *, backend: str | None = None) -> list[dict]:
    """The runs of a JUnit XML file (one per <testsuite>): date, host, wall time and its test
    cases, each with node id and backend. Raises LedgerError for a test case whose backend
    cannot be told (give `backend`)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    runs = []
    for suite in suites:
        run = {"file": Path(path).name, "date": _date(suite.get("timestamp")),
               "hostname": suite.get("hostname"), "wall": round(float(suite.get("time") or 0), 3),
               "cases": [], "collection_errors": []}
        for case in suite.iter("testcase"):
            nodeid = _nodeid(case)
            if nodeid is None:
                error = case.find("error")
                why = _first_line(error.get("message")) if error is not None else ""
                run["collection_errors"].append(f"{case.get('name')}: {why}")
                continue
            entry, props = _case(case)
            entry["test"] = nodeid
            entry["backend"] = backend_of(nodeid, props, backend)
            if entry["backend"] is None:
                raise LedgerError(f"{path}: cannot tell the backend of {nodeid} (no spec_backend "
                                  f"property, no backend id in its parameters): pass --backend")
            run["cases"].append(entry)
        runs.append(run)
    return runs


# ----------------------------------------------------------------------------- merging
def merge(ledger: dict, run: dict, *, label: str, commit: str | None) -> dict:
    """Merge one parsed run into `ledger` (in place) and return the run's record.

    An entry is replaced only by one of the same date or later, so adding an old file after a
    newer one keeps the newer result. Adding the same file twice changes nothing."""
    date = run["date"]
    stamp = {"date": date, "commit": commit, "label": label}
    per_backend: dict[str, dict] = {}
    for case in run["cases"]:
        b = case["backend"]
        entry = {k: case[k] for k in ("outcome", "message", "examples", "cut", "duration")}
        entry.update(stamp)
        tests = ledger["tests"].setdefault(b, {})
        old = tests.get(case["test"])
        if old is None or old["date"] <= date:
            tests[case["test"]] = entry
        if case["outcome"] == "failed":
            found = {"test": case["test"], "backend": b, "message": case["message"],
                     "counter_example": case.get("counter_example", ""), **stamp}
            if not any(f["test"] == found["test"] and f["backend"] == b and f["date"] == date
                       for f in ledger["failures"]):
                ledger["failures"].append(found)
        mine = per_backend.setdefault(b, {"tests": 0, "examples": 0, "failures": 0,
                                          "time": 0.0})
        mine["tests"] += 1
        mine["examples"] += case["examples"] or 0
        mine["failures"] += case["outcome"] == "failed"
        mine["time"] = round(mine["time"] + case["duration"], 3)
    record = {"label": label, "date": date, "commit": commit, "file": run["file"],
              "hostname": run["hostname"], "wall": run["wall"],
              "tests": sum(m["tests"] for m in per_backend.values()),
              "examples": sum(m["examples"] for m in per_backend.values()),
              "failures": sum(m["failures"] for m in per_backend.values()),
              "backends": per_backend}
    if run["collection_errors"]:
        record["collection_errors"] = run["collection_errors"]
    same = [i for i, r in enumerate(ledger["runs"])
            if (r["date"], r.get("hostname"), r["file"]) == (date, run["hostname"], run["file"])]
    if same:
        ledger["runs"][same[0]] = record
    else:
        ledger["runs"].append(record)
    ledger["runs"].sort(key=lambda r: r["date"])
    ledger["failures"].sort(key=lambda f: (f["date"], f["backend"], f["test"]))
    return record


# ----------------------------------------------------------------------------- the suite
def _pytest_collect(backend: str, paths: list[str]) -> str:
    """`pytest --collect-only -q --thorough-shard x PATHS` on `backend`: its standard output."""
    env = {**os.environ, "SPEC_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--thorough-shard", "x", *paths], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise LedgerError(f"collecting the suite on {backend} failed (exit {done.returncode}):"
                          f"\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def collect_suite(ledger: dict, backend_ids: Iterable[str], *, paths=("conformance",),
                  commit: str | None = None,
                  runner: Callable[[str, list[str]], str] | None = None) -> dict:
    """Store in `ledger["suite"]` the Hypothesis tests that pytest collects on each backend
    (the thorough shard deselects the rest), with the date and commit of the collection.
    `runner(backend, paths)` gives pytest's output (default: `_pytest_collect`)."""
    runner = runner or _pytest_collect
    when = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    for b in backend_ids:
        out = runner(b, list(paths))
        tests = sorted({line.strip() for line in out.splitlines()
                        if "::" in line and not line.startswith(" ")})
        if not tests:
            raise LedgerError(f"collecting the suite on {b} listed no Hypothesis test")
        ledger["suite"][b] = {"collected": when, "commit": commit, "paths": list(paths),
                              "tests": tests}
    return ledger


# ----------------------------------------------------------------------------- summaries
def backend_summary(ledger: dict, backend: str) -> dict:
    """The figures of one backend: suite size, tests run, full, cut, skipped, failing, never
    run, examples, time, last run, and whether a full run has completed (and when)."""
    entries = ledger["tests"].get(backend, {})
    suite = ledger["suite"].get(backend)
    suite_tests = set(suite["tests"]) if suite else None
    current = {t: e for t, e in entries.items() if suite_tests is None or t in suite_tests}
    passed = [e for e in current.values() if e["outcome"] == "passed"]
    cut = [e for e in passed if e["cut"]]
    runs = [r for r in ledger["runs"] if backend in r["backends"]]
    wall = 0.0
    for r in runs:  # a run of several backends: its wall time shared out by test time
        total = sum(m["time"] for m in r["backends"].values()) or 1.0
        wall += r["wall"] * (r["backends"][backend]["time"] / total
                             if len(r["backends"]) > 1 else 1.0)
    summary = {
        "suite": len(suite_tests) if suite_tests is not None else None,
        "collected": suite["collected"] if suite else None,
        "run": len(current),
        "full": len(passed) - len(cut),
        "cut": len(cut),
        "cut_examples": sum(e["examples"] or 0 for e in cut),
        "skipped": sum(e["outcome"] == "skipped" for e in current.values()),
        "failing": sum(e["outcome"] == "failed" for e in current.values()),
        "never_run": sorted(suite_tests - set(current)) if suite_tests is not None else None,
        "stale": sorted(set(entries) - set(current)),
        "examples": sum(e["examples"] or 0 for e in current.values()
                        if e["outcome"] != "skipped"),
        "test_time": sum(e["duration"] for e in current.values()),
        "wall": wall,
        "last_run": max((r["date"] for r in runs), default=None),
        "full_run": None,
    }
    if suite_tests and not summary["never_run"]:
        dates = [current[t]["date"] for t in suite_tests]
        summary["full_run"] = {"from": min(dates), "to": max(dates)}
    return summary


def _backends(ledger: dict) -> list[str]:
    import backends

    found = set(ledger["suite"]) | set(ledger["tests"])
    order = list(backends.IDS)
    return sorted(found, key=lambda b: (order.index(b) if b in order else len(order), b))


def _day(date: str | None) -> str:
    return date[:10] if date else "—"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def _cell(text: str) -> str:
    """Free text made safe for a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _n(value) -> str:
    return "—" if value is None else f"{value:,}"


def fixed_by(ledger: dict, failure: dict) -> dict | None:
    """The later passing run of a failure's test, if its latest entry is one; else None."""
    entry = ledger["tests"].get(failure["backend"], {}).get(failure["test"])
    if entry and entry["outcome"] == "passed" and entry["date"] > failure["date"]:
        return entry
    return None


# ----------------------------------------------------------------------------- Markdown
def markdown(ledger: dict) -> str:
    """The README of the ledger folder."""
    ids = _backends(ledger)
    out = [
        "# Thorough runs of the conformance suite", "",
        "Every Hypothesis test of the suite run at the `thorough` profile: 10,000 examples a "
        "test, not derandomised, on each backend. The suite at that strength takes hours a "
        "backend, so it runs in pieces, thorough shards (`--thorough-shard`, see "
        "`conformance/shard.py`), and this ledger keeps what each piece ran: the latest result "
        "of every test on every backend, every run, and every failure ever found. A test "
        "stopped at its time share (`--shard-test-seconds`) with every example passed counts "
        "the examples it drew; it is listed as *cut*, not as run in full. Written by "
        "`python -m conformance.thorough_ledger` from `ledger.json` beside this page; do not "
        "edit it by hand.", "",
        "A run of a piece, and its recording:", "",
        "```bash",
        "SPEC_BACKEND=numpy python -m pytest -n auto --thorough-shard KEY --shard-budget 3600 \\",
        "    --shard-test-seconds 120 --junitxml=run.xml -o junit_family=xunit1 conformance",
        'python -m conformance.thorough_ledger add run.xml --label "numpy, shard KEY" '
        "[--collect numpy]",
        "python -m conformance.thorough_ledger render "
        "[--collect numpy,torch,jax,array_api_strict,dask]",
        "```", "",
        "`--collect` lists the suite (`pytest --collect-only --thorough-shard x conformance` on "
        "each backend) so that the tests not yet run can be told. Each new KEY visits the "
        "tests in another order; tests a budget leaves are reached by a later key.", "",
    ]
    out += ["## Per backend", ""]
    if not ids:
        out += ["*Nothing recorded yet.*", ""]
    else:
        sums = {b: backend_summary(ledger, b) for b in ids}

        def row(title: str, cell: Callable[[dict], str]) -> str:
            return f"| {title} | " + " | ".join(cell(sums[b]) for b in ids) + " |"

        def full(s: dict) -> str:
            if s["suite"] is None:
                return "suite not collected"
            if s["full_run"] is None:
                return f"no: {len(s['never_run']):,} to go"
            f = s["full_run"]
            span = _day(f["to"]) if _day(f["from"]) == _day(f["to"]) else \
                f"{_day(f['from'])} – {_day(f['to'])}"
            return f"**yes**, {span}"

        out += ["| | " + " | ".join(f"`{b}`" for b in ids) + " |",
                "|---|" + "---:|" * len(ids),
                row("tests in the suite", lambda s: _n(s["suite"])),
                row("run at least once", lambda s: _n(s["run"])),
                row("passed, all their examples drawn", lambda s: _n(s["full"])),
                row("passed, cut at their time share", lambda s: _n(s["cut"])),
                row("examples the cut tests drew", lambda s: _n(s["cut_examples"])),
                row("skipped", lambda s: _n(s["skipped"])),
                row("failing at their latest run", lambda s: _n(s["failing"])),
                row("never run", lambda s: _n(None if s["never_run"] is None
                                               else len(s["never_run"]))),
                row("examples drawn", lambda s: _n(s["examples"])),
                row("time in tests", lambda s: _duration(s["test_time"])),
                row("wall time of its runs", lambda s: _duration(s["wall"])),
                row("last run", lambda s: _day(s["last_run"])),
                row("suite collected", lambda s: _day(s["collected"])),
                row("full run completed", full), ""]
        out += ["Counts are of each test's latest run. *All their examples drawn*: 10,000, or "
                "fewer where Hypothesis ran out of distinct inputs. *Time in tests*: the "
                "latest runs' durations summed; *wall time of its runs*: every run that "
                "included the backend (a run of several backends shared out by test time). "
                "A full run is completed once every test of the collected suite has run; the "
                "dates are those of the oldest and newest of those runs.", ""]
        stale = {b: s["stale"] for b, s in sums.items() if s["stale"]}
        if stale:
            out += ["Run, but no longer in the collected suite (renamed or removed): "
                    + "; ".join(f"`{b}` {len(t)}" for b, t in stale.items()) + ".", ""]
    out += ["## Runs", ""]
    if ledger["runs"]:
        out += ["| label | date (UTC) | commit | backend | tests | examples | wall | "
                "failures | host |", "|---|---|---|---|---:|---:|---:|---:|---|"]
        for r in reversed(ledger["runs"]):
            out.append(f"| {_cell(r['label'])} | {r['date'][:16].replace('T', ' ')} | "
                       f"`{r['commit'] or '?'}` | {', '.join(sorted(r['backends'])) or '—'} | "
                       f"{r['tests']:,} | {r['examples']:,} | {_duration(r['wall'])} | "
                       f"{r['failures']} | {r.get('hostname') or '—'} |")
        out.append("")
    else:
        out += ["*No run recorded yet.*", ""]
    out += ["## Failures found", ""]
    if ledger["failures"]:
        out += ["Every failure a thorough run has found, kept after its test passes again. "
                "*Fixed*: the test's latest run, later than the failure, passed.", ""]
        for f in reversed(ledger["failures"]):
            later = fixed_by(ledger, f)
            status = (f"**fixed**: passed {_day(later['date'])} at `{later['commit'] or '?'}`"
                      if later else "**open**")
            text = [f["message"] or "(no message)", *f.get("counter_example", "").splitlines()]
            out += [f"- {_day(f['date'])}, `{f['backend']}`, `{f['test']}` "
                    f"(commit `{f['commit'] or '?'}`, {_cell(f['label'])}): {status}", "",
                    "    ```text", *[f"    {line}".rstrip() for line in text], "    ```", ""]
    else:
        out += ["*None.*", ""]
    waiting = {b: backend_summary(ledger, b)["never_run"] for b in ids}
    waiting = {b: t for b, t in waiting.items() if t}
    if waiting:
        out += ["## Not yet run", ""]
        for b, tests in waiting.items():
            out += ['<details markdown="1">',
                    f"<summary><code>{b}</code>: {len(tests):,} tests</summary>", "",
                    *[f"- `{t}`" for t in tests], "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def render(folder: Path, ledger: dict | None = None) -> Path:
    """Write `README.md` of the ledger folder from its ledger."""
    folder = Path(folder)
    ledger = load(folder) if ledger is None else ledger
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "README.md"
    path.write_text(markdown(ledger), encoding="utf-8")
    return path


def add(folder: Path, files: Iterable[Path], *, label: str, commit: str | None = None,
        backend: str | None = None) -> tuple[dict, list[dict]]:
    """Merge the runs of JUnit XML `files` into the ledger of `folder`; return the ledger and
    the runs' records (nothing is written: see `save` and `render`)."""
    ledger = load(folder)
    records = []
    for file in files:
        for run in parse_junit(Path(file), backend=backend):
            records.append(merge(ledger, run, label=label, commit=commit))
    return ledger, records


# ----------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.thorough_ledger",
                                description="Record thorough runs (JUnit XML of thorough "
                                "shards) in the ledger and write its README.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER,
                        help=f"the ledger folder (default {DEFAULT_LEDGER})")
    common.add_argument("--collect", default="", metavar="BACKEND,...",
                        help="first list the suite's Hypothesis tests on these backends")
    common.add_argument("--paths", default="conformance",
                        help="what --collect collects (comma-separated; default conformance)")
    a = sub.add_parser("add", parents=[common], help="merge JUnit XML files, then render")
    a.add_argument("files", nargs="+", type=Path, metavar="RUN.xml")
    a.add_argument("--label", required=True, help="free text naming the run")
    a.add_argument("--commit", default=None,
                   help="the commit the run tested (default: this checkout's, `+` if dirty)")
    a.add_argument("--backend", default=None,
                   help="the backend of test cases that name none (a single-backend run)")
    sub.add_parser("render", parents=[common], help="write README.md from ledger.json")
    args = p.parse_args(argv)
    try:
        if args.command == "add":
            commit = args.commit or source_commit()
            ledger, records = add(args.ledger, args.files, label=args.label, commit=commit,
                                  backend=args.backend)
        else:
            ledger, records, commit = load(args.ledger), [], None
        collect = [b.strip() for b in args.collect.split(",") if b.strip()]
        if collect:
            collect_suite(ledger, collect, paths=[s for s in args.paths.split(",") if s],
                          commit=commit or source_commit())
    except (LedgerError, OSError, ET.ParseError, ValueError) as exc:
        print(f"thorough_ledger: {exc}", file=sys.stderr)
        return 2
    if args.command == "add" or collect:
        save(ledger, args.ledger)
    readme = render(args.ledger, ledger)
    for r in records:
        print(f"added {r['file']} ({r['date']}): {r['tests']} tests on "
              f"{', '.join(sorted(r['backends']))}, {r['examples']:,} examples, "
              f"{r['failures']} failures")
        for err in r.get("collection_errors", []):
            print(f"  collection error, not recorded: {err}", file=sys.stderr)
    print(f"written: {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
