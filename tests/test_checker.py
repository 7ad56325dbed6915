"""The checker (`conformance.check`) proven on planted defects: each wrong kernel must get the
right diagnosis on NumPy, PyTorch and JAX (where the dtype exists), and the spec itself and
the frameworks' correct kernels must pass.

Each defect is written once against the Array API (array_api_compat), so the same wrong
kernel runs on every backend:

- a softmax without the max shift: exp overflows at logits of 1e4 (edges, accuracy);
- a LayerNorm with ε outside the root: the ε property breaks (and the ε variant, once the
  spec names it);
- an interleaved RoPE checked as the rotate-half form: the layout (variant);
- a top-p that drops the crossing token: the boundary (the nucleus no longer reaches p);
- a bfloat16 RMSNorm that accumulates in bfloat16: the accuracy criterion;
- an attention that gives NaN on fully masked rows: the semantics (edges, property).

The checker runs with its small "quick" Hypothesis profile (6 examples, derandomised) and one
dtype per case. Most of the module's time is JAX compiling each operation for each new shape:
on two shared cores the whole module took 5.5 minutes (330 s, the JAX cases 20 to 50 s each);
NumPy and PyTorch alone take about 1.5 minutes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from array_api_compat import array_namespace

import backends
import spec
from conformance import adapters
from conformance.check import check

BACKENDS = ("numpy", "torch", "jax")


def _backend(backend_id):
    try:
        return backends.get(backend_id)
    except backends.BackendUnavailable as exc:
        pytest.skip(str(exc))


def _variant_named(equation, **options):
    """The spec's named variant with these options, if the spec declares one yet."""
    for v in spec.catalogue()[equation].variants:
        if all(v.options.get(k) == value for k, value in options.items()):
            return v
    return None


# ============================================================================ planted defects
def naive_softmax(z, /, *, axis=-1, temperature=1.0):
    """exp(z)/Σ exp(z) without subtracting the max: exp(1e4) overflows."""
    xp = array_namespace(z)
    e = xp.exp(z / temperature)
    return e / xp.sum(e, axis=axis, keepdims=True)


def layer_norm_eps_outside(x, gamma, beta, /, *, eps=1e-5):
    """(x − μ)/(σ + ε): ε added outside the square root."""
    xp = array_namespace(x)
    mu = xp.mean(x, axis=-1, keepdims=True)
    sigma = xp.sqrt(xp.mean((x - mu) ** 2, axis=-1, keepdims=True))
    return gamma * (x - mu) / (sigma + eps) + beta


def rope_interleaved(x, positions, /, *, base=10000.0):
    """RoPE rotating the pairs (2i, 2i + 1): the interleaved layout (RoFormer, LLaMA)."""
    xp = array_namespace(x)
    d = x.shape[-1]
    i = xp.astype(xp.arange(d // 2), x.dtype)
    theta = float(base) ** (-2.0 * i / d)
    angle = xp.astype(positions, x.dtype)[:, None] * theta
    cos, sin = xp.cos(angle), xp.sin(angle)
    even, odd = x[..., 0::2], x[..., 1::2]
    pairs = xp.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
    return xp.reshape(pairs, x.shape)


def top_p_drop_crossing(probs, /, *, p):
    """Keeps the tokens whose running mass (themselves included) is ≤ p, and the most
    probable token: the token that crosses p is dropped (002 §10.2.3's "Σ P(v) ≤ p", kept
    non-empty, as samplers that mask cumsum ≤ p without shifting the mask do)."""
    xp = array_namespace(probs)
    order = xp.argsort(-probs, axis=-1, stable=True)
    ranks = xp.argsort(order, axis=-1, stable=True)
    ordered = xp.take_along_axis(probs, order, axis=-1)
    running = xp.cumulative_sum(ordered, axis=-1)
    first = xp.arange(probs.shape[-1]) == 0
    keep_sorted = (running <= p * running[..., -1:]) | first
    keep = xp.take_along_axis(keep_sorted, ranks, axis=-1)
    kept = xp.where(keep, probs, xp.zeros_like(probs))
    return kept / xp.sum(kept, axis=-1, keepdims=True)


def rms_norm_low_accumulation(x, gamma, /, *, eps=1e-6):
    """Σ x² accumulated term by term in the input's dtype (a kernel whose accumulator register
    has the input's type): bfloat16 keeps 8 significant bits, so once the running sum is 256
    times a square, the next square is less than half an ulp and is lost."""
    xp = array_namespace(x)
    acc = xp.zeros_like(x[..., 0])
    rest = x
    for _ in range(x.shape[-1]):
        # always the first column, then the row rotated: JAX compiles each op once per shape
        # (x[..., i] would compile a slice for every i)
        acc = acc + rest[..., 0] * rest[..., 0]
        rest = xp.roll(rest, -1, axis=-1)
    ms = acc / x.shape[-1]
    return gamma * x / xp.sqrt(ms[..., None] + eps)


def attention_nan_rows(q, k, v, /, *, mask=None, is_causal=False, scale=None):
    """softmax(QKᵀ/√d + M)V with the max shift, but a fully masked row is −∞ − (−∞) = NaN."""
    xp = array_namespace(q)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ xp.matrix_transpose(k)) * scale
    if mask is not None:
        s = xp.where(mask, s, -math.inf) if mask.dtype == xp.bool else s + mask
    if is_causal:
        n_q, n_k = q.shape[-2], k.shape[-2]
        i = xp.arange(n_q)[:, None]
        j = xp.arange(n_k)[None, :]
        s = xp.where(j <= i + (n_k - n_q), s, -math.inf)
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    return (e / xp.sum(e, axis=-1, keepdims=True)) @ v


# ============================================================================ the diagnoses
# JAX compiles each operation for each new shape, so on JAX each test runs the sections (and
# the properties, by identity) that make its diagnosis; NumPy and PyTorch run more.
def _light(backend_id) -> bool:
    return backend_id == "jax"


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_softmax_without_max_shift_overflows_at_1e4(backend_id):
    _backend(backend_id)
    card = check(naive_softmax, "softmax", backend=backend_id, dtypes=("float32",),
                 profile="quick", sections=("accuracy", "edges"))
    assert not card.passed
    edge = next(e for e in card.edges if e.case == "±1e4 logits")
    assert edge.status == "differs" and "NaN" in edge.message, edge
    acc = card.accuracy[0]
    assert acc.status == "failed" and acc.candidate_ulp == math.inf
    assert any(w.startswith("±1e4 logits") for w in acc.worst), acc.worst
    # nothing else is wrong with it
    assert all(e.status != "differs" for e in card.edges
               if e.case in ("−∞ logits", "NaN propagation", "empty batch"))
    assert any(d.startswith("edge ±1e4 logits") for d in card.diagnoses())


def _eps_outside_variant():
    """LayerNorm's named form with ε added after the root, σ + ε (None until the spec names it)."""
    return next((v for v in spec.catalogue()["layer_norm"].variants
                 if v.options.get("eps_form") == "after_root"), None)


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_layer_norm_eps_outside_the_root(backend_id):
    _backend(backend_id)
    card = check(layer_norm_eps_outside, "layer_norm", backend=backend_id,
                 dtypes=("float64",), profile="quick", sections=("variant", "properties"),
                 identities=("eps_inside_root",) if _light(backend_id) else None)
    prop = next(p for p in card.properties
                if p.name == "layer_norm_eps_inside_root_two_pass_biased")
    assert prop.status == "broken" and "eps_inside_root" in prop.identities, card.diagnoses()
    assert "off the correct float64 formula" in prop.message
    outside = _eps_outside_variant()
    if outside is not None:  # the ε variant, once the spec names it
        assert card.variant.status == "mismatch" and card.variant.matched == outside.name


def test_layer_norm_eps_variant_named():
    """The ε variant by name (pending until spec/normalization.py declares it)."""
    outside = _eps_outside_variant()
    if outside is None:
        pytest.skip("spec/normalization.py does not name LayerNorm's ε-outside variant yet")
    card = check(layer_norm_eps_outside, "layer_norm", backend="numpy", dtypes=("float64",),
                 profile="quick", sections=("variant",))
    assert card.variant.status == "mismatch" and card.variant.matched == outside.name
    assert check(layer_norm_eps_outside, "layer_norm", backend="numpy", dtypes=("float64",),
                 profile="quick", sections=("variant",), variant=outside.name).passed


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_interleaved_rope_checked_as_rotate_half(backend_id):
    _backend(backend_id)
    half = _variant_named("rope", layout="half")
    form = {"variant": half.name} if half else {"options": {"layout": "half"}}
    sections = ("variant",) if _light(backend_id) else ("variant", "accuracy")
    card = check(rope_interleaved, "rope", backend=backend_id, dtypes=("float32",),
                 profile="quick", sections=sections, **form)
    v = card.variant
    assert v.status == "mismatch", v
    interleaved = _variant_named("rope", layout="interleaved")
    assert v.matched == (interleaved.name if interleaved else "default (layout='interleaved')")
    assert "layout" in v.message or interleaved.name in v.message
    assert card.diagnoses()[0].startswith("variant: computes the")
    if not _light(backend_id):
        assert card.accuracy[0].status == "failed"  # far from the half form's mpmath values
    # checked as what it is, it passes
    right = check(rope_interleaved, "rope", backend=backend_id, dtypes=("float32",),
                  profile="quick", sections=sections,
                  **({"variant": interleaved.name} if interleaved
                     else {"options": {"layout": "interleaved"}}))
    assert right.passed, right.diagnoses()


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_top_p_dropping_the_crossing_token(backend_id):
    _backend(backend_id)
    card = check(top_p_drop_crossing, "top_p_filter", backend=backend_id,
                 dtypes=("float64",), profile="quick", sections=("variant", "properties"),
                 identities=("reaches_p",) if _light(backend_id) else None)
    broken = [p for p in card.properties if p.status == "broken"]
    assert any("reaches_p" in p.identities for p in broken), card.diagnoses()
    fixed = next(p for p in broken if p.name == "top_p_reaches_p_where_002_writes_at_most_p")
    assert "p = 0.6" in fixed.message, fixed.message
    drawn = next(p for p in broken if p.name == "top_p_filter_reaches_p_minimal_and_normalised")
    # the counter-example, each draw by its label
    assert {"V", "p", "p_target"} <= set(drawn.counterexample), drawn.counterexample
    dropping = next((v for v in spec.catalogue()["top_p_filter"].variants if not v.default),
                    None)
    if dropping is not None:  # the boundary variant, once the spec names it
        assert card.variant.status == "mismatch" and card.variant.matched == dropping.name
        assert check(top_p_drop_crossing, "top_p_filter", backend=backend_id,
                     dtypes=("float64",), profile="quick", sections=("variant",),
                     variant=dropping.name).passed


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_rms_norm_accumulating_in_low_precision_fails_the_accuracy_criterion(backend_id):
    bk = _backend(backend_id)
    dtype = "bfloat16" if "bfloat16" in bk.float_dtypes else "float16"  # NumPy: float16
    card = check(rms_norm_low_accumulation, "rms_norm", backend=backend_id, dtypes=(dtype,),
                 profile="quick", sections=("accuracy",))
    acc = card.accuracy[0]
    assert acc.status == "failed", acc
    assert acc.candidate_ulp > acc.allowed_ulp == acc.k * acc.spec_ulp + acc.floor_ulp
    # bfloat16 (8 significant bits) loses the sum of a wide row (rows of 5 ± 2: squares near
    # 29 stop counting once the sum reaches 8192, a third of the true 29700); float16 (11 bits,
    # but a largest value of 65504) keeps the sum nearer, and fails on the rounding of a wide
    # row or on squares that overflow (where the records have such an input)
    if dtype == "bfloat16":
        case = next(c for c in acc.cases if c.note == "wide rows (1024)")
        assert case.candidate_ulp > acc.allowed_ulp, acc.cases
    else:
        assert any(c.candidate_ulp > acc.allowed_ulp for c in acc.cases
                   if "overflow" in c.note or c.note == "wide rows (1024)"), acc.cases
    assert card.diagnoses()[0].startswith(f"accuracy ({dtype})")

    def widened(x, gamma, /, *, eps=1e-6):
        """The same kernel accumulating in float32 (the spec's dtype policy)."""
        xp = array_namespace(x)
        out = rms_norm_low_accumulation(xp.astype(x, xp.float32),
                                        xp.astype(gamma, xp.float32), eps=eps)
        return xp.astype(out, x.dtype)

    right = check(widened, "rms_norm", backend=backend_id, dtypes=(dtype,), profile="quick",
                  sections=("accuracy",)).accuracy[0]
    wide = next(c for c in right.cases if c.note == "wide rows (1024)")
    assert wide.candidate_ulp <= right.allowed_ulp, right


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_attention_nan_on_fully_masked_rows(backend_id):
    _backend(backend_id)
    card = check(attention_nan_rows, "scaled_dot_product_attention", backend=backend_id,
                 dtypes=("float32",), profile="quick", sections=("properties", "edges"),
                 identities=("fully_masked_row_zero",))
    edge = next(e for e in card.edges if e.case == "fully masked row (boolean mask)")
    assert edge.status == "differs", edge
    assert edge.message.startswith("NaN in 2 of 6 entries where the spec gives 0"), edge
    broken = {p.name for p in card.properties if p.status == "broken"}
    assert "sdpa_fully_masked_rows_are_zero_not_nan" in broken, card.diagnoses()
    # rows with a key to attend are right
    assert next(e for e in card.edges if e.case == "NaN propagation").status == "agrees"


# ============================================================================ what must pass
@pytest.mark.parametrize(("backend_id", "equation", "dtypes"), [
    ("numpy", "softmax", ("float32", "float64", "float16")),
    ("numpy", "layer_norm", ("float64",)),
    ("numpy", "top_p_filter", ("float32",)),
    ("numpy", "scaled_dot_product_attention", ("float64",)),
    ("torch", "rms_norm", ("float32", "bfloat16")),
    ("torch", "rope", ("float32",)),
    ("jax", "softmax", ("bfloat16",)),
])
def test_the_spec_passes_its_own_checker(backend_id, equation, dtypes):
    _backend(backend_id)
    card = check(getattr(spec, equation), equation, backend=backend_id, dtypes=dtypes,
                 profile="quick")
    assert card.passed, card.diagnoses()
    assert card.properties or equation == "rms_norm"
    assert all(a.status == "passed" for a in card.accuracy if a.status != "n/a")
    if backend_id == "torch":  # autograd through the spec is the spec's closed form
        assert all(g.status == "agrees" for g in card.gradients), card.gradients


def _natives(*names):
    from conformance import natives

    return {n.name: (eq, natives.kernel(n)) for eq, n in natives.all_natives()
            if n.name in names}


@pytest.mark.parametrize(("kernel", "backend_id", "dtypes", "sections"), [
    ("torch.softmax", "torch", ("float32", "bfloat16"), None),
    ("torch.log_softmax", "torch", ("float64",), ("accuracy", "gradients", "edges")),
    ("scipy.special.softmax", "numpy", ("float64",), None),
    ("scipy.special.log_softmax", "numpy", ("float32",), None),
    ("jax.nn.softmax", "jax", ("float32",), ("accuracy", "edges")),
])
def test_correct_native_kernels_pass(kernel, backend_id, dtypes, sections):
    _backend(backend_id)
    found = _natives(kernel)
    if not found:
        pytest.skip(f"{kernel} is not available here")
    equation, fn = found[kernel]
    card = check(fn, equation, backend=backend_id, dtypes=dtypes, profile="quick",
                 sections=sections or ("variant", "properties", "accuracy", "gradients",
                                       "edges"))
    assert card.passed, card.diagnoses()


# ============================================================================ the spec as referee
def _sigmoid_through_float16(x, /):
    """σ(x) rounded through float16 (11 significant bits, smallest subnormal 6e−8)."""
    xp = array_namespace(x)
    return xp.astype(xp.astype(spec.sigmoid(x), xp.float16), x.dtype)


def test_edge_far_from_the_spec_is_judged_by_mpmath(monkeypatch):
    """An edge value far from the spec's is wrong only if it is also farther from mpmath:
    where the spec is the one that is off, the candidate's edge is 'better', not 'differs'."""
    right = check(spec.sigmoid, "sigmoid", backend="numpy", dtypes=("float64",),
                  profile="quick", sections=("edges",))
    assert right.passed and {e.status for e in right.edges} <= {"agrees", "n/a"}, right.edges
    # a candidate off by float16's rounding: differs, and mpmath says it is the one off
    wrong = check(_sigmoid_through_float16, "sigmoid", backend="numpy", dtypes=("float64",),
                  profile="quick", sections=("edges",))
    differs = [e for e in wrong.edges if e.status == "differs"]
    assert differs and not wrong.passed, wrong.edges
    assert all("; mpmath: candidate" in e.message for e in differs), differs
    # the same two functions with the roles swapped: the spec is off, the candidate is right
    monkeypatch.setattr(spec.catalogue()["sigmoid"], "func", _sigmoid_through_float16)
    swapped = check(spec.sigmoid, "sigmoid", backend="numpy", dtypes=("float64",),
                    profile="quick", sections=("edges",))
    better = [e for e in swapped.edges if e.status == "better"]
    assert {e.case for e in better} == {e.case for e in differs}, swapped.edges
    assert all("the candidate is right where the spec is not" in e.message for e in better)
    assert swapped.passed and "⭐ better" in swapped.to_markdown()


# ============================================================================ the card, the CLI
def test_card_json_and_markdown():
    card = check(top_p_drop_crossing, "top_p_filter", backend="numpy", dtypes=("float64",),
                 profile="quick", identities=("reaches_p",))
    data = json.loads(card.to_json())
    assert data["passed"] is False and data["diagnoses"] == card.diagnoses()
    assert {"variant", "properties", "accuracy", "gradients", "edges"} <= set(data)
    drawn = next(p for p in data["properties"] if p["counterexample"])
    assert drawn["counterexample"]["p"]["shape"]  # arrays as lists, with dtype and shape
    md = card.to_markdown()
    assert md.startswith("# Report card") and "❌ failed" in md and "## Diagnosis" in md
    assert "## Accuracy against mpmath" in md and "## Edge semantics" in md


def test_adapters_refuse_options_the_kernel_lacks():
    torch = pytest.importorskip("torch")
    softmax = adapters.rowwise(torch.softmax)
    with pytest.raises(adapters.Unsupported, match="temperature"):
        softmax(torch.zeros(3), temperature=2.0)
    card = check(softmax, "softmax", backend="torch", dtypes=("float64",), profile="quick",
                 sections=("properties",), identities=("temperature_limits",))
    assert [p.status for p in card.properties] == ["n/a"]  # not broken: it has no temperature
    assert card.passed


def test_torch_adam_adapter_is_one_step_of_the_optimizer():
    torch = pytest.importorskip("torch")
    adam = adapters.torch_adam(torch.optim.Adam, foreach=False)
    rng = np.random.default_rng(0)
    theta, m, g = (torch.tensor(rng.normal(size=5)) for _ in range(3))
    v = torch.tensor(rng.uniform(0.1, 1, 5))
    got = adam(theta, m, v, g, step=3, lr=0.01)
    want = spec.adam_step(theta, m, v, g, step=3, lr=0.01)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert torch.equal(theta, torch.tensor(np.random.default_rng(0).normal(size=5)))


def test_cli_writes_the_card_and_fails_on_a_failure(tmp_path):
    from conformance.__main__ import main

    good = main(["--candidate", "softmax=spec:softmax", "--backend", "numpy", "--dtypes",
                 "float32", "--report", str(tmp_path), "--quiet"])
    assert good == 0
    data = json.loads((tmp_path / "card-softmax-numpy.json").read_text())
    assert data["passed"] and data["candidate"] == "spec:softmax"
    assert (tmp_path / "card-softmax-numpy.md").read_text().startswith("# Report card")
    bad = main(["--candidate", f"softmax={__name__}:naive_softmax", "--backend", "numpy",
                "--dtypes", "float32", "--report", str(tmp_path), "--quiet"])
    assert bad == 1
    assert not json.loads((tmp_path / "card-softmax-numpy.json").read_text())["passed"]


@pytest.mark.parametrize(("spec_arg", "extra", "message"), [
    ("softmax", [], "takes EQUATION=package.module:function"),
    ("softmax=spec", [], "is 'package.module:function'"),
    ("softmax=no_such_module_here:f", [], "No module named 'no_such_module_here'"),
    ("softmax=spec:no_such_function", [], "no_such_function"),
    ("softmax=spec:__doc__", [], "is not callable"),
    ("nonesuch=spec:softmax", [], "'nonesuch' is not a registered equation"),
    ("softmax=spec:softmax", ["--dtypes", "float128"], "has no float128"),
    ("softmax=spec:softmax", ["--variant", "nonesuch"], "names no variant 'nonesuch'"),
])
def test_cli_bad_candidate_exits_2_with_a_message(tmp_path, capsys, spec_arg, extra, message):
    from conformance.__main__ import main

    code = main(["--candidate", spec_arg, "--backend", "numpy", "--report", str(tmp_path),
                 "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert not list(tmp_path.glob("card-*"))


def test_cli_in_a_subprocess_does_not_run_the_suite(tmp_path):
    """One line from the shell; the suite (pytest) does not run."""
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "--candidate", "sigmoid=spec:sigmoid",
         "--backend", "numpy", "--dtypes", "float64", "--report", str(tmp_path), "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "card written" in proc.stdout and "passed" not in proc.stderr
    assert not (tmp_path / "report.json").exists()


# ============================================================================ the natives' results
def test_natives_cover_the_kernels_the_issue_names():
    from conformance import natives

    filed = {n.name: (eq, n.library) for eq, n in natives.all_natives()}
    assert filed["F.scaled_dot_product_attention"] == ("scaled_dot_product_attention", "torch")
    assert filed["jax.nn.dot_product_attention"] == ("scaled_dot_product_attention", "jax")
    assert filed["torch.optim.Adam"] == ("adam_step", "torch")
    assert {name for name, (_, lib) in filed.items() if lib == "scipy"} >= {
        "scipy.special.softmax", "scipy.special.expit", "scipy.special.erf"}
    assert set(natives.BACKEND) == {lib for _, lib in filed.values()}


def test_natives_results_round_trip_and_merge(tmp_path):
    """Runs made apart (the JAX kernels in a process of their own) merge into one page: each
    card comes back from JSON as it was, and a later run's kernel replaces an earlier one's."""
    pytest.importorskip("matplotlib")
    from conformance import natives
    from conformance.checker.card import Card

    card = check(naive_softmax, "softmax", backend="numpy", dtypes=("float32",),
                 profile="quick", sections=("accuracy", "edges"), name="naive")
    assert Card.from_dict(json.loads(card.to_json())).to_dict() == card.to_dict()
    good = check(spec.softmax, "softmax", backend="numpy", dtypes=("float32",),
                 profile="quick", sections=("accuracy",))
    entry = {"equation": "softmax", "library": "scipy", "kernel": "scipy.special.softmax",
             "backend": "numpy", "note": ""}
    natives.write([{**entry, "card": card}], tmp_path / "a", "quick")
    natives.write([{**entry, "card": good},
                   {**entry, "kernel": "F.linear", "skipped": "not here"}], tmp_path / "b", "ci")
    assert natives.main(["--merge", str(tmp_path / "a"), str(tmp_path / "b"),
                         "--out", str(tmp_path / "m")]) == 0
    entries, profile = natives.merged([tmp_path / "m"])
    assert [e["kernel"] for e in entries] == ["scipy.special.softmax", "F.linear"]
    assert entries[0]["card"].passed and profile == "ci and quick"
    md = (tmp_path / "m" / "natives.md").read_text()
    assert "Partial results: 2 of" in md and "⏭ skipped | not here" in md
    assert (tmp_path / "m" / "cards" / "scipy.special.softmax.md").exists()
    assert (tmp_path / "m" / "natives.png").stat().st_size > 0
