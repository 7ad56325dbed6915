"""`python -m conformance.low_precision_table` on NumPy (float16 only: NumPy has no bfloat16),
for three cheap equations: softmax and sigmoid, which SciPy has kernels of, and tanh, which it
has none of. The spec must be within its tier R budget on every case it ran."""

from __future__ import annotations

import json

import pytest

from conformance import low_precision_table as table

NAMES = ("softmax", "sigmoid", "tanh")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("low-precision")
    code = table.main(["--backend", "numpy", "--only", ",".join(NAMES), "--out", str(out)])
    data = json.loads((out / "low-precision.json").read_text(encoding="utf-8"))
    return code, data, (out / "low-precision.md").read_text(encoding="utf-8")


def test_the_spec_is_within_budget_in_float16(result):
    code, data, _ = result
    assert [e["equation"] for e in data["equations"]] == list(NAMES)
    assert data["meta"]["backend"] == "numpy" and data["meta"]["commit"]
    for e in data["equations"]:
        assert e["dtypes"]["bfloat16"] == {"skipped": "backend numpy has no bfloat16"}
        m = e["dtypes"]["float16"]
        assert m["cases"] > 0 and m["budget"] > 0
        assert m["spec"]["ran"] + len(m["spec"]["left_out"]) == m["cases"]
        assert m["spec"]["returned"] == ["float16"], e["equation"]
        assert 0 <= m["spec"]["ulp"] <= m["budget"], (e["equation"], m["spec"])
    assert data["over_budget"] == [] and code == 0


def test_kernels_are_measured_on_the_cases_they_take(result):
    _, data, md = result
    kernels = {e["equation"]: e["dtypes"]["float16"]["kernels"] for e in data["equations"]}
    assert kernels["tanh"] == {}  # SciPy files no tanh kernel
    assert set(kernels["softmax"]) == {"scipy.special.softmax"}
    assert set(kernels["sigmoid"]) == {"scipy.special.expit"}
    for equation in ("softmax", "sigmoid"):
        (k,) = kernels[equation].values()
        if "skipped" in k:
            assert "scipy" in k["skipped"]  # SciPy not installed: said, not failed
            continue
        cases = data["equations"][NAMES.index(equation)]["dtypes"]["float16"]["cases"]
        assert k["ran"] + len(k["left_out"]) == cases and k["ran"] > 0
        assert k["ulp"] >= 0
    # softmax's temperature: an option SciPy's kernel lacks, left out with the reason
    if "skipped" not in kernels["softmax"]["scipy.special.softmax"]:
        assert any("temperature" in c["reason"]
                   for c in kernels["softmax"]["scipy.special.softmax"]["left_out"])
    assert "| tanh | — | n/a | n/a | n/a | 0 | — | 2 |" in md.replace(" ❌", "")
    assert "The spec is within its budget everywhere." in md


def test_a_spec_over_budget_is_reported(result):
    _, data, _ = result
    entries = json.loads(json.dumps(data["equations"]))
    entries[0]["dtypes"]["float16"]["spec"]["ulp"] = 3.14159
    assert table.over_budget(entries)[0].startswith("softmax float16: 3.14 ulp > 2")
    md = table.markdown(entries, data["meta"])
    assert "| softmax | scipy.special.softmax | n/a | n/a | n/a | 3.14 ❌ |" in md
    assert "**The spec exceeds its budget:** softmax float16: 3.14 ulp > 2" in md
