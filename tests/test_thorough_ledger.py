"""The ledger of thorough runs (conformance/thorough_ledger.py): merging JUnit XML, rendering."""

from __future__ import annotations

import json

import pytest

from conformance import thorough_ledger as tl

PROP = "conformance/test_properties.py::test_property"
SOFTMAX = "softmax-softmax_rows_sum_to_one-float32"
DOT = "dot-dot_commutes-float64"

# the first run: numpy and torch; a pass, a pass cut at its time share, a failure, a skip
FIRST = f"""<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests">
 <testsuite name="pytest" errors="0" failures="1" skipped="1" tests="5" time="130.5"
            timestamp="2026-03-01T10:00:00.123456+00:00" hostname="runner-1">
  <testcase classname="conformance.test_properties" name="test_property[numpy-{SOFTMAX}]"
            file="conformance/test_properties.py" line="41" time="40.25">
   <properties>
    <property name="spec_tier" value="P"/>
    <property name="spec_backend" value="numpy"/>
    <property name="thorough_examples" value="10000"/>
   </properties>
  </testcase>
  <testcase classname="conformance.test_properties" name="test_property[numpy-{DOT}]"
            file="conformance/test_properties.py" line="41" time="60.0">
   <properties>
    <property name="spec_backend" value="numpy"/>
    <property name="thorough_cut" value="True"/>
    <property name="thorough_examples" value="2345"/>
   </properties>
  </testcase>
  <testcase classname="conformance.test_properties" name="test_property[torch-{SOFTMAX}]"
            file="conformance/test_properties.py" line="41" time="20.0">
   <properties>
    <property name="thorough_examples" value="17"/>
   </properties>
   <failure message="AssertionError: rows sum to 1.0009765625&#10;assert False">backend = torch
E   AssertionError: rows sum to 1.0009765625
E   Falsifying example: test_property(
E       backend=&lt;Backend torch&gt;,
E       data=data(...),
E   )
E   You can reproduce this example by temporarily adding
E   @reproduce_failure('6.1', b'AXic') as a decorator on your test function</failure>
  </testcase>
  <testcase classname="conformance.test_properties"
            name="test_property[torch-dot-dot_commutes-bfloat16]"
            file="conformance/test_properties.py" line="41" time="0.01">
   <properties>
    <property name="spec_backend" value="torch"/>
    <property name="thorough_examples" value="1"/>
   </properties>
   <skipped type="pytest.skip" message="backend torch has no bfloat16">skipped</skipped>
  </testcase>
  <testcase classname="conformance.test_properties" name="test_property[torch-{DOT}]"
            file="conformance/test_properties.py" line="41" time="10.0">
   <properties>
    <property name="spec_backend" value="torch"/>
    <property name="thorough_examples" value="10000"/>
   </properties>
  </testcase>
 </testsuite>
</testsuites>
"""

# a later run: the failed torch test passes
SECOND = f"""<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests">
 <testsuite name="pytest" errors="0" failures="0" skipped="0" tests="1" time="55.0"
            timestamp="2026-03-02T08:30:00+00:00" hostname="runner-2">
  <testcase classname="conformance.test_properties" name="test_property[torch-{SOFTMAX}]"
            file="conformance/test_properties.py" line="41" time="50.0">
   <properties>
    <property name="spec_backend" value="torch"/>
    <property name="thorough_examples" value="10000"/>
   </properties>
  </testcase>
 </testsuite>
</testsuites>
"""

SUITE = {b: [f"{PROP}[{b}-{SOFTMAX}]", f"{PROP}[{b}-{DOT}]", f"{PROP}[{b}-never_run-float32]"]
         for b in ("numpy", "torch")}
SUITE["torch"].append(f"{PROP}[torch-dot-dot_commutes-bfloat16]")


def _fake_collect(backend, paths):
    assert paths == ["conformance"]
    return "\n".join([*SUITE[backend], "", f"{len(SUITE[backend])}/99 tests collected "
                      "(95 deselected) in 1.00s"]) + "\n"


@pytest.fixture
def runs(tmp_path):
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    first.write_text(FIRST, encoding="utf-8")
    second.write_text(SECOND, encoding="utf-8")
    return first, second


def _ledger(tmp_path, runs, monkeypatch):
    monkeypatch.setattr(tl, "_pytest_collect", _fake_collect)
    folder = tmp_path / "thorough"
    assert tl.main(["add", str(runs[0]), "--label", "shard a | first", "--commit", "aaa111",
                    "--ledger", str(folder), "--collect", "numpy,torch"]) == 0
    assert tl.main(["add", str(runs[1]), "--label", "shard b", "--commit", "bbb222",
                    "--ledger", str(folder)]) == 0
    return folder, json.loads((folder / "ledger.json").read_text(encoding="utf-8"))


def test_parse_finds_node_ids_backends_examples_and_cuts(runs):
    (run,) = tl.parse_junit(runs[0])
    assert run["date"] == "2026-03-01T10:00:00+00:00"
    assert run["hostname"] == "runner-1" and run["wall"] == 130.5
    cases = {(c["test"], c["backend"]): c for c in run["cases"]}
    assert len(cases) == 5
    cut = cases[(f"{PROP}[numpy-{DOT}]", "numpy")]
    assert cut["outcome"] == "passed" and cut["cut"] and cut["examples"] == 2345
    # no spec_backend property: the backend is read from the parameter id
    failed = cases[(f"{PROP}[torch-{SOFTMAX}]", "torch")]
    assert failed["outcome"] == "failed"
    assert failed["message"] == "AssertionError: rows sum to 1.0009765625"
    assert "backend=<Backend torch>" in failed["counter_example"]
    assert "@reproduce_failure('6.1', b'AXic')" in failed["counter_example"]
    skipped = cases[(f"{PROP}[torch-dot-dot_commutes-bfloat16]", "torch")]
    assert skipped["outcome"] == "skipped" and skipped["message"] == "backend torch has no bfloat16"


def test_a_case_without_a_backend_needs_one(tmp_path):
    xml = tmp_path / "run.xml"
    xml.write_text(FIRST.replace('<property name="spec_backend" value="numpy"/>', "")
                   .replace("[numpy-", "[plain-"), encoding="utf-8")
    with pytest.raises(tl.LedgerError, match="pass --backend"):
        tl.parse_junit(xml)
    cases = tl.parse_junit(xml, backend="numpy")[0]["cases"]
    assert {c["backend"] for c in cases} == {"numpy", "torch"}


def test_merge_keeps_the_latest_entry_and_every_failure(tmp_path, runs, monkeypatch):
    folder, ledger = _ledger(tmp_path, runs, monkeypatch)
    assert set(ledger["tests"]) == {"numpy", "torch"}
    torch_softmax = ledger["tests"]["torch"][f"{PROP}[torch-{SOFTMAX}]"]
    assert torch_softmax["outcome"] == "passed"  # the later run replaced the failure
    assert torch_softmax["commit"] == "bbb222" and torch_softmax["label"] == "shard b"
    assert torch_softmax["date"] == "2026-03-02T08:30:00+00:00"
    (failure,) = ledger["failures"]  # ... which the history keeps
    assert failure["test"] == f"{PROP}[torch-{SOFTMAX}]" and failure["backend"] == "torch"
    assert failure["date"] == "2026-03-01T10:00:00+00:00" and failure["commit"] == "aaa111"
    assert failure["message"] == "AssertionError: rows sum to 1.0009765625"
    assert [r["label"] for r in ledger["runs"]] == ["shard a | first", "shard b"]
    first = ledger["runs"][0]
    assert (first["tests"], first["examples"], first["failures"]) == (5, 22363, 1)
    assert first["wall"] == 130.5 and first["hostname"] == "runner-1"
    assert first["backends"]["numpy"] == {"tests": 2, "examples": 12345, "failures": 0,
                                          "time": 100.25}
    assert ledger["suite"]["torch"]["tests"] == sorted(SUITE["torch"])
    assert ledger["suite"]["numpy"]["commit"] == "aaa111"

    # adding the older file again changes no entry, run or failure
    before = json.dumps(ledger, sort_keys=True)
    assert tl.main(["add", str(runs[0]), "--label", "shard a | first", "--commit", "aaa111",
                    "--ledger", str(folder)]) == 0
    again = json.loads((folder / "ledger.json").read_text(encoding="utf-8"))
    assert json.dumps(again, sort_keys=True) == before


def test_summary_counts_per_backend(tmp_path, runs, monkeypatch):
    _, ledger = _ledger(tmp_path, runs, monkeypatch)
    numpy, torch = tl.backend_summary(ledger, "numpy"), tl.backend_summary(ledger, "torch")
    assert (numpy["suite"], numpy["run"], numpy["full"], numpy["cut"]) == (3, 2, 1, 1)
    assert numpy["cut_examples"] == 2345 and numpy["examples"] == 12345
    assert numpy["never_run"] == [f"{PROP}[numpy-never_run-float32]"]
    assert numpy["full_run"] is None
    assert (torch["suite"], torch["run"], torch["full"], torch["skipped"]) == (4, 3, 2, 1)
    assert torch["failing"] == 0 and torch["examples"] == 20000
    assert torch["last_run"] == "2026-03-02T08:30:00+00:00"
    # the wall time of the first run is shared out by the backends' test time
    assert numpy["wall"] == pytest.approx(130.5 * 100.25 / 130.26)


def test_readme_shows_counts_runs_fixed_failures_and_what_has_not_run(tmp_path, runs,
                                                                      monkeypatch):
    folder, _ = _ledger(tmp_path, runs, monkeypatch)
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# Thorough runs of the conformance suite")
    assert "10,000 examples" in text and "--thorough-shard" in text
    assert "| | `numpy` | `torch` |" in text
    assert "| tests in the suite | 3 | 4 |" in text
    assert "| run at least once | 2 | 3 |" in text
    assert "| passed, all their examples drawn | 1 | 2 |" in text
    assert "| passed, cut at their time share | 1 | 0 |" in text
    assert "| examples the cut tests drew | 2,345 | 0 |" in text
    assert "| never run | 1 | 1 |" in text
    assert "| full run completed | no: 1 to go | no: 1 to go |" in text
    assert "| shard a \\| first | 2026-03-01 10:00 | `aaa111` | numpy, torch | 5 | 22,363 |" \
        in text
    assert "| shard b | 2026-03-02 08:30 | `bbb222` | torch | 1 | 10,000 | 55 s | 0 |" in text
    failures = text.split("## Failures found")[1].split("## Not yet run")[0]
    assert f"`{PROP}[torch-{SOFTMAX}]`" in failures
    assert "**fixed**: passed 2026-03-02 at `bbb222`" in failures
    assert "AssertionError: rows sum to 1.0009765625" in failures
    assert "@reproduce_failure('6.1', b'AXic')" in failures
    assert "**open**" not in failures
    waiting = text.split("## Not yet run")[1]
    assert waiting.count('<details markdown="1">') == 2
    assert f"- `{PROP}[numpy-never_run-float32]`" in waiting
    assert f"{PROP}[numpy-{SOFTMAX}]" not in waiting


def test_a_full_run_is_dated_once_every_test_has_run(tmp_path, runs, monkeypatch):
    _, ledger = _ledger(tmp_path, runs, monkeypatch)
    ledger["suite"]["numpy"]["tests"].remove(f"{PROP}[numpy-never_run-float32]")
    summary = tl.backend_summary(ledger, "numpy")
    assert summary["full_run"] == {"from": "2026-03-01T10:00:00+00:00",
                                   "to": "2026-03-01T10:00:00+00:00"}
    assert "| full run completed | **yes**, 2026-03-01 | no: 1 to go |" in tl.markdown(ledger)


def test_a_failure_stays_open_until_a_later_pass(tmp_path, runs, monkeypatch):
    monkeypatch.setattr(tl, "_pytest_collect", _fake_collect)
    folder = tmp_path / "thorough"
    assert tl.main(["add", str(runs[0]), "--label", "a", "--commit", "c1",
                    "--ledger", str(folder)]) == 0
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert "**open**" in text and "**fixed**" not in text
    assert "| failing at their latest run | 0 | 1 |" in text
    assert "| full run completed | suite not collected | suite not collected |" in text
    # render alone, with the suite collected, writes the same ledger's README again
    assert tl.main(["render", "--ledger", str(folder), "--collect", "torch"]) == 0
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert "| tests in the suite | — | 4 |" in text


def test_an_empty_ledger_renders():
    text = tl.markdown(tl.empty_ledger())
    assert "*Nothing recorded yet.*" in text and "*No run recorded yet.*" in text
