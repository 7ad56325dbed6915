"""The dask backend on a `dask.distributed` cluster chosen by `SPEC_DASK_SCHEDULER`.

A two-worker `LocalCluster` started through the environment variable must compute a spec
equation (softmax cross-entropy over a chunked batch) equal to NumPy in float64, with the tasks
seen running on the cluster's workers (a threaded fall-back would run none there); a bad
scheduler address or `local:N` value must raise `BackendUnavailable` naming it; closing the
backend must give dask its default scheduler back; with the variable unset no client exists; and
the scale-out benchmark's `--quick` run (what CI runs) must write checked results. Skipped,
saying so, only where `distributed` is not installed.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.array", reason="the dask backend needs dask (pip install "
                    "'ai-math-spec[dask]')")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                  "(pip install 'ai-math-spec[dask]')")

import dask  # noqa: E402

import backends  # noqa: E402
import spec  # noqa: E402
from backends import dask as dask_backend  # noqa: E402
from backends._base import BackendUnavailable  # noqa: E402


def _select(monkeypatch, value: str | None):
    """backends.get('dask') with SPEC_DASK_SCHEDULER=value, bypassing the session's cache."""
    monkeypatch.setattr(backends, "_cache", {})
    if value is None:
        monkeypatch.delenv(dask_backend.SCHEDULER_ENV, raising=False)
    else:
        monkeypatch.setenv(dask_backend.SCHEDULER_ENV, value)
    return backends.get("dask")


@pytest.fixture(scope="module")
def cluster_backend():
    mp = pytest.MonkeyPatch()
    before = dask.config.get("scheduler", None)
    backend = _select(mp, "local:2")
    yield backend
    backend.close()
    mp.undo()
    assert backend.client.status == "closed"
    assert dask.config.get("scheduler", None) == before, "the client stayed dask's default"


def _ce_float64(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=-1)) + m[:, 0]
    return float(np.mean(lse - z[np.arange(len(z)), labels]))


def test_local_cluster_runs_the_equations_on_its_workers(cluster_backend):
    client = cluster_backend.client
    assert len(client.nthreads()) == 2
    name = cluster_backend.device_name()
    assert name.startswith("distributed: LocalCluster tcp://") and "(2 workers" in name, name
    assert "distributed" in cluster_backend.versions()

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(64, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    z, y = cluster_backend.asarray(logits), cluster_backend.asarray(labels)
    assert z.numblocks == (2, 2), "the batch must span several chunks"
    with distributed.get_task_stream(client) as stream:
        loss = cluster_backend.to_numpy(spec.softmax_cross_entropy(z, y))
    np.testing.assert_allclose(loss, _ce_float64(logits, labels), rtol=1e-6)
    workers = {task["worker"] for task in stream.data}
    assert stream.data, "no task ran on the cluster: the compute fell back to local threads"
    assert workers <= set(client.nthreads()), workers


def test_synchronize_computes_on_the_cluster(cluster_backend):
    x = cluster_backend.asarray(np.arange(8.0))
    with distributed.get_task_stream(cluster_backend.client) as stream:
        assert cluster_backend.synchronize(cluster_backend.xp.sum(x * x)) is None
    assert stream.data


def test_bad_scheduler_address_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(dask_backend, "CONNECT_TIMEOUT", "1s")
    address = "tcp://127.0.0.1:1"  # nothing listens on port 1
    with pytest.raises(BackendUnavailable) as info:
        _select(monkeypatch, address)
    message = str(info.value)
    assert address in message and "SPEC_DASK_SCHEDULER" in message, message
    assert "dask scheduler" in message and "dask worker" in message, message


@pytest.mark.parametrize("value", ["local:0", "local:two", "local:-1"])
def test_bad_local_worker_count_is_a_clear_error(monkeypatch, value):
    with pytest.raises(BackendUnavailable, match="local:N with N ≥ 1"):
        _select(monkeypatch, value)


def test_unset_means_the_threaded_scheduler_and_no_client(monkeypatch):
    backend = _select(monkeypatch, None)
    assert backend.client is None and backend.cluster is None
    assert backend.device_name() == "cpu"


def test_missing_distributed_only_matters_when_a_scheduler_is_asked_for(monkeypatch):
    real = importlib.import_module

    def fake(name, package=None):
        if name == "distributed" or name.startswith("distributed."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    assert _select(monkeypatch, "").client is None
    with pytest.raises(BackendUnavailable, match=r"pip install 'ai-math-spec\[dask\]'"):
        _select(monkeypatch, "local:1")


@pytest.mark.slow
def test_scaling_benchmark_quick_writes_checked_results(tmp_path):
    """`python -m benchmarks.dask_scaling --quick` (what CI runs): two clusters, checked result."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.dask_scaling", "--quick", "--out",
                           str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "dask_scaling.json").read_text())
    assert [r["workers"] for r in report["results"]] == [1, 2]
    for row in report["results"]:
        assert row["check"]["relative_error"] <= 2e-5 and row["seconds"] > 0
        assert row["numpy_processes_logits_per_s"] > 0
        assert row["check"]["logits"] == report["logits"] == 2**20
    assert report["results"][0]["speedup"] == 1.0
    page = (tmp_path / "dask_scaling.md").read_text()
    assert f"`os.cpu_count()` = {os.cpu_count()}" in page and "| 2 |" in page
    assert (tmp_path / "dask_scaling.png").read_bytes().startswith(b"\x89PNG")
