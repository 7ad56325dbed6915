"""The worked examples run, briefly, and learn (the full runs' figures are in docs/results)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def _load(name: str):
    spec_ = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend_id", ["numpy", "torch"])
def test_train_mlp_digits_learns(backend_id, tmp_path):
    pytest.importorskip("sklearn", reason="the digits example needs scikit-learn")
    pytest.importorskip("matplotlib", reason="the digits example plots with matplotlib")
    if backend_id == "torch":
        pytest.importorskip("torch", reason="the torch run needs torch")
    example = _load("train_mlp_digits")
    code = example.main(["--backend", backend_id, "--epochs", "3", "--hidden", "32",
                         "--out", str(tmp_path), "--require", "0", "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / f"mlp_digits_{backend_id}.json").read_text())
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0] < 2.5  # log 10 ≈ 2.30 at initialisation, then falling
    assert result["final_test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert (tmp_path / f"mlp_digits_{backend_id}.png").stat().st_size > 10_000


def test_tiny_gpt_trains_and_its_cached_generation_matches(tmp_path):
    pytest.importorskip("torch", reason="tiny_gpt trains with torch autograd")
    pytest.importorskip("matplotlib", reason="tiny_gpt plots with matplotlib")
    example = _load("tiny_gpt")
    example.main(["--backend", "torch", "--steps", "30", "--eval-every", "15", "--batch", "8",
                  "--context", "16", "--d-model", "32", "--heads", "2", "--chars", "20000",
                  "--sample-chars", "12", "--out", str(tmp_path), "--no-progress"])
    result = json.loads((tmp_path / "tiny_gpt_torch.json").read_text())
    assert result["cached_generation_equals_full_recompute"] is True
    val = result["history"]["val_loss"]
    # from ≈ log V at initialisation towards the unigram entropy within 30 steps
    assert val[-1] < val[0] and val[-1] < math.log(result["vocab"])
    assert len(result["sample"]) >= 12


def test_tiny_llama_trains_and_its_cached_generation_matches(tmp_path):
    pytest.importorskip("torch", reason="tiny_llama trains with torch autograd")
    pytest.importorskip("matplotlib", reason="tiny_llama plots with matplotlib")
    example = _load("tiny_llama")
    example.main(["--backend", "torch", "--steps", "30", "--eval-every", "15", "--batch", "8",
                  "--context", "16", "--d-model", "32", "--heads", "4", "--kv-heads", "2",
                  "--chars", "20000", "--sample-chars", "12", "--out", str(tmp_path),
                  "--no-progress"])
    result = json.loads((tmp_path / "tiny_llama_torch.json").read_text())
    assert result["cached_generation_equals_full_recompute"] is True
    # RMSNorm, SwiGLU at 8d/3 → 88, two K/V heads for four query heads, untied: counted = formula
    assert (result["d_ff"], result["kv_heads"]) == (88, 2)
    assert result["parameters"] == 2 * (2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 88 + 2 * 32) + (
        32 + 2 * result["vocab"] * 32)
    val = result["history"]["val_loss"]
    # from ≈ log V at initialisation towards the unigram entropy within 30 steps
    assert val[-1] < val[0] and val[-1] < math.log(result["vocab"])
    assert len(result["sample"]) >= 12
