"""Every declared identity is accounted for: the report, the exit status and the CLI.

A test names the identity keys it proves (`@pytest.mark.spec(..., identities=...)`); the report
gives a status per identity × tier, and a complete run fails when a declared identity × tier
has no test, as it does for an equation × tier. A partial run (`-- -k …`) does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import backends
import spec
from conformance import __main__ as cli
from conformance import plugin, report

REPO = Path(__file__).resolve().parents[1]


def _record(tier, identities, equation="softmax", outcome="passed", nodeid=None):
    return {"nodeid": nodeid or f"conformance/test_x.py::test_{tier}[numpy]",
            "equations": [equation], "tier": tier, "backend": "numpy",
            "identities": [f"{equation}:{k}" for k in identities], "outcome": outcome,
            "message": ""}


def _every_softmax_test(skip_identity=None, tier_of_gap="R"):
    """Records that prove every softmax identity in every tier, but one (identity, tier)."""
    rec = spec.catalogue()["softmax"]
    out = []
    for tier in rec.tiers:
        keys = [i.key for i in rec.identities_in(tier)
                if (i.key, tier) != (skip_identity, tier_of_gap)]
        out.append(_record(tier, keys))
    return out


def _softmax_only(rep):
    """The report restricted to softmax (the other equations have no records here)."""
    rep = dict(rep)
    rep["matrix"] = {b: {"softmax": g["softmax"]} for b, g in rep["matrix"].items()}
    rep["identities"] = {b: {"softmax": g["softmax"]} for b, g in rep["identities"].items()}
    return rep


def test_the_report_has_a_status_per_identity_and_tier_with_its_tests():
    rep = report.build(_every_softmax_test(), [backends.get("numpy")], exit_code=0,
                       profile="ci")
    grid = rep["identities"]["numpy"]["softmax"]
    declared = {i.key: i.tiers for i in spec.catalogue()["softmax"].identities}
    assert set(grid) == set(declared)
    for key, tiers in declared.items():
        assert set(grid[key]) == set(tiers)
        for cell in grid[key].values():
            assert cell["status"] == "passed" and cell["tests"]
    text = report.markdown(rep)
    assert "## Identities" in text and "| `softmax` | `shift_invariance` |" in text


def test_a_complete_run_fails_on_an_identity_without_a_test(capsys):
    gap = _softmax_only(report.build(_every_softmax_test("extreme_logits", "R"),
                                     [backends.get("numpy")], exit_code=0, profile="ci"))
    assert gap["identities"]["numpy"]["softmax"]["extreme_logits"]["R"]["status"] == "missing"
    assert report.gaps(gap) == ["numpy: softmax:extreme_logits tier R"]
    assert cli.exit_status(gap, 0) == 1
    assert "softmax:extreme_logits tier R" in capsys.readouterr().err
    whole = _softmax_only(report.build(_every_softmax_test(), [backends.get("numpy")],
                                       exit_code=0, profile="ci"))
    assert report.gaps(whole) == [] and cli.exit_status(whole, 0) == 0


def test_a_partial_run_does_not_check_completeness(capsys):
    partial = _softmax_only(report.build(_every_softmax_test("extreme_logits", "R"),
                                         [backends.get("numpy")], exit_code=0, profile="ci",
                                         complete=False))
    assert report.gaps(partial) == []
    assert cli.exit_status(partial, 0) == 0
    assert "partial run" in capsys.readouterr().out


def test_a_failed_identity_test_fails_the_identity():
    records = [*_every_softmax_test(), _record("P", ["sums_to_one"], outcome="failed")]
    rep = report.build(records, [backends.get("numpy")], exit_code=1, profile="ci")
    assert rep["identities"]["numpy"]["softmax"]["sums_to_one"]["P"]["status"] == "failed"
    assert rep["identities"]["numpy"]["softmax"]["shift_invariance"]["P"]["status"] == "passed"


@pytest.mark.parametrize(("key", "problem"), [
    ("no_such_identity", "not declared in tier P by softmax"),
    ("stable_equals_textbook", "not declared in tier P by softmax"),  # softmax's tier-S key
    ("logsumexp:no_such_key", "not declared in tier P by logsumexp"),
])
def test_a_marker_naming_an_unknown_identity_is_refused(key, problem):
    resolved, problems = plugin.identity_keys(("softmax",), "P", (key,))
    assert resolved == [] and len(problems) == 1 and problem in problems[0]


def test_a_bare_key_resolves_for_every_listed_equation_that_declares_it():
    resolved, problems = plugin.identity_keys(("softmax", "log_softmax"), "P", ("sums_to_one",))
    assert problems == [] and resolved == ["softmax:sums_to_one"]


# --- the CLI: what a newcomer types --------------------------------------------------------------
def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_a_selection_with_k_exits_zero_and_says_it_was_partial(tmp_path):
    out = _run("--quiet", "--report", str(tmp_path), "--profile", "ci", "--", "-k", "logsumexp")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "partial run" in out.stdout
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["complete"] is False and rep["totals"]["passed"] > 0


@pytest.mark.parametrize(("where", "message"), [
    ("README.md", "is a file, not a directory"),
    ("/proc/no/such/dir", "cannot be created"),
])
def test_a_bad_report_path_is_refused_before_the_suite_runs(where, message):
    out = _run("--report", where, timeout=60)
    assert out.returncode == 2 and message in out.stderr
    assert "passed" not in out.stdout  # nothing ran


def test_a_blank_backend_is_an_error_not_numpy():
    out = _run("--backend", " ", timeout=60)
    assert out.returncode == 2 and "is blank" in out.stderr
