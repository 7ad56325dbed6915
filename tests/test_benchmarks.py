"""The benchmark machinery: the cost model, the native kernels it races against, the page.

Nothing here times anything: the native kernels must compute what the spec computes (else a
speed ratio would compare different work), the byte counts must follow from the shapes, and
the page must draw its numbers — speedups, crossovers, targets — from the raw file correctly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import backends
from benchmarks import cases, report
from benchmarks.__main__ import main as bench_main
from benchmarks.roofline import Roofline


def _backend(backend_id):
    try:
        return backends.get(backend_id)
    except backends.BackendUnavailable as exc:
        pytest.skip(str(exc))


def _host(backend, x):
    if isinstance(x, (tuple, list)):  # mlp_forward's (output, cache)
        x = x[0]
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


# the native kernel's layout → the spec's layout
_LAYOUT = {
    ("torch", "multi_head_attention"): lambda y: np.swapaxes(y, 0, 1),  # (T, B, d) → (B, T, d)
    ("jax", "scaled_dot_product_attention"): lambda y: np.swapaxes(y[0], 0, 1),
    ("jax", "scaled_dot_product_attention_causal"): lambda y: np.swapaxes(y[0], 0, 1),
}


#: the framework kernels raced against, per library (NumPy's are SciPy's)
NATIVE = {
    "numpy": {"softmax", "log_softmax", "logsumexp"},
    "jax": {"softmax", "log_softmax", "logsumexp", "gelu", "silu",
            "scaled_dot_product_attention", "scaled_dot_product_attention_causal"},
    "torch": set(cases.CASES) - {"rope", "mlp_forward"},
}


@pytest.mark.parametrize("backend_id", list(NATIVE))
def test_native_kernel_computes_what_the_spec_computes(backend_id):
    backend = _backend(backend_id)
    raced = set()
    for name, case in cases.CASES.items():
        work = case.build(backend, 2**14, "float32")
        if backend.library not in work.native:
            continue
        raced.add(name)
        want = case.fn(*work.args, **work.kwargs)
        if name == "adam_step":
            want = want[0]  # θ; the native optimiser updates its parameter in place
        got = _host(backend, work.native[backend.library]())
        got = _LAYOUT.get((backend.library, name), lambda y: y)(got)
        want = _host(backend, want)
        assert got.shape == want.shape, name
        # float32 work of at most a few thousand terms per output, compared at their scale
        scale = max(1.0, float(np.max(np.abs(want))))
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-4 * scale, err_msg=name)
    assert raced == NATIVE[backend_id]


@pytest.mark.parametrize("name", list(cases.CASES))
def test_bytes_moved_are_each_input_read_once_and_each_output_written_once(name):
    backend = _backend("numpy")
    case = cases.CASES[name]
    work = case.build(backend, 2**14, "float32")
    inputs = list(work.args)
    arrays = []
    while inputs:  # flatten the parameter lists and mappings
        x = inputs.pop()
        if isinstance(x, dict):
            inputs += list(x.values())
        elif isinstance(x, (list, tuple)):
            inputs += list(x)
        else:
            arrays.append(x)
    arrays = list({id(a): a for a in arrays}.values())  # MHA's x_q is x_kv: read once
    read = sum(a.size * a.itemsize for a in arrays)
    out = case.fn(*work.args, **work.kwargs)
    if name == "mlp_forward":  # the output and the cache it keeps (z₁, h₁, z₂ = h₂ = output)
        written = sum(a.size * a.itemsize for a in (*out[1].z, out[1].h[1]))
    elif name == "adam_step":
        written = sum(a.size * a.itemsize for a in out)
    else:
        written = np.asarray(out).size * np.asarray(out).itemsize
    assert work.bytes == pytest.approx(read + written, rel=1e-3, abs=8)


def _fake_run(tmp_path, entries):
    """A pytest-benchmark file with the given (case, backend, gpu, mode, n, median) rows."""
    benches = []
    for case, backend_id, gpu, mode, n, median in entries:
        bw = 3000.0 if gpu else 20.0
        nbytes = 8 * n
        benches.append({
            "stats": {"median": median},
            "extra_info": {
                "case": case, "backend": backend_id, "gpu": gpu, "device": backend_id,
                "mode": mode, "precision": "float32", "elements": n, "shape": f"{n}",
                "gb_per_s": nbytes / median / 1e9, "tflop_per_s": 0.0,
                "roofline_fraction": nbytes / (bw * 1e9) / median, "limited_by": "memory",
                "roofline": {"copy_gb_per_s": bw, "matmul_tflops": 50.0},
            },
        })
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"benchmarks": benches, "datetime": "now"}))
    return path


def test_page_reports_speedup_crossover_and_targets(tmp_path):
    small, big = 2**14, 2**28
    path = _fake_run(tmp_path, [
        ("softmax", "numpy", False, "eager", small, 1e-5),
        ("softmax", "numpy", False, "eager", big, 1.0),
        ("softmax", "torch", False, "native", big, 0.5),
        ("softmax", "torch:cuda", True, "eager", small, 5e-5),  # the GPU loses when small
        ("softmax", "torch:cuda", True, "eager", big, 0.01),
        ("softmax", "torch:cuda", True, "compiled", big, 0.004),
        ("softmax", "torch:cuda", True, "native", big, 0.005),
    ])
    rows, meta = report.load(path)
    assert len(rows) == 7
    page = report.markdown(rows, meta, {"numpy has no bfloat16": 3}, title="T", plots_dir="p")
    line = next(x for x in page.splitlines() if x.startswith("| `softmax` | 2^28"))
    _, _, _, cpu, gpu, speedup, wins_from, compiled_vs_native, _, _ = line.split("|")
    assert cpu.strip() == "500.00 ms (torch · native)"
    assert gpu.strip() == "4.00 ms (torch:cuda · compiled)"
    assert speedup.strip() == "**125.0×**"  # best CPU 0.5 s / best GPU 4 ms
    assert wins_from.strip() == "2^28"  # the GPU loses at 2^14
    assert compiled_vs_native.strip() == "1.25×"  # native 5 ms / compiled 4 ms
    # targets: compiled moves 8·2^28 B in 4 ms = 537 GB/s of 3000: 18 %, missed
    targets = page[page.index("## Targets"):page.index("## Not measured")]
    assert "| `softmax` | torch:cuda | 2^28 | 1.25× | met |" in targets
    assert "| `softmax` | torch:cuda | 2^28 | 18 % | missed by 62 pts |" in targets
    assert "| `softmax` | torch:cuda | 2^28 | 7 % | missed by 23 pts |" in targets  # eager
    assert "| numpy has no bfloat16 | 3 |" in page
    assert "![softmax](p/softmax.png)" in page


def test_crossover_is_where_the_gpu_wins_from_then_on():
    def cell(cpu, gpu):
        return {"c · eager": report.Row("s", "c", False, "cpu", "eager", "float32", 1, "", cpu,
                                        1, 1, 1, "memory", 1, 1),
                "g · eager": report.Row("s", "g", True, "gpu", "eager", "float32", 1, "", gpu,
                                        1, 1, 1, "memory", 1, 1)}

    assert report.crossover({1: cell(1, 2), 2: cell(2, 1), 4: cell(4, 1)}) == 2
    assert report.crossover({1: cell(1, 0.5), 2: cell(2, 3), 4: cell(4, 1)}) == 4
    assert report.crossover({1: cell(1, 2), 2: cell(2, 3)}) is None


def test_roofline_bound_is_the_larger_of_memory_and_compute_time():
    roof = Roofline("b", "d", "float32", 0, copy_gb_per_s=1000.0, matmul_n=0,
                    matmul_tflops=10.0)
    assert roof.bound_seconds(1e9, 1.0) == pytest.approx(1e-3)  # 1 GB at 1 TB/s
    assert roof.bound_seconds(1.0, 1e12) == pytest.approx(0.1)  # 1 TFLOP at 10 TFLOP/s


def test_cli_runs_and_reports_unavailable_backends(tmp_path, monkeypatch):
    pytest.importorskip("pytest_benchmark", reason="the benchmarks need pytest-benchmark")
    pytest.importorskip("matplotlib", reason="the page's plots need matplotlib")
    # inside an xdist worker pytest-benchmark switches itself off (it reads this variable);
    # the CLI's own pytest session is not distributed
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    code = bench_main(["--backends", "numpy,torch:cuda", "--quick", "--out", str(tmp_path),
                       "--", "-k", "softmax-n14 and float32 and eager", "-p", "no:xdist"])
    assert code == 0
    raw = json.loads((tmp_path / "benchmarks.json").read_text())
    (bench,) = [b for b in raw["benchmarks"] if b["extra_info"]["case"] == "softmax"]
    info = bench["extra_info"]
    assert info["bytes_moved"] == 2 * 2**14 * 4 and info["backend"] == "numpy"
    assert math.isclose(info["gb_per_s"], info["bytes_moved"] / bench["stats"]["median"] / 1e9)
    page = (tmp_path / "benchmarks.md").read_text()
    if backends.available()["torch:cuda"] is not None:
        assert "backend torch:cuda not run" in page
    assert (tmp_path / "plots" / "softmax.png").stat().st_size > 5_000


def test_cli_with_no_runnable_backend_says_why(tmp_path, capsys):
    if backends.available()["cupy"] is None:
        pytest.skip("cupy runs here")
    assert bench_main(["--backends", "cupy", "--out", str(tmp_path)]) == 2
    assert "backend cupy not run" in capsys.readouterr().err
