"""Tier P properties of §5 Layers and networks, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The activations' host references (`HOST`) are NumPy and
SciPy in float64, independent of the spec.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from scipy import special

import spec
from conformance import compiled
from conformance import strategies as cst
from conformance.precision import host_dtype, round_to
from conformance.properties import prop
from conformance.settings import LOW_DTYPES
from conformance.tolerances import Tol
from spec.layers import ACTIVATIONS, MLPCache

#: independent host references of the activations (NumPy / SciPy, float64)
HOST = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "sigmoid": lambda z: special.expit(z),
    "tanh": np.tanh,
    "gelu": lambda z: 0.5 * z * special.erfc(-z / math.sqrt(2)),
    "silu": lambda z: z * special.expit(z),
}

#: |φ(a) − φ(b)| ≤ Lip·|a − b| for these activations (GELU's slope peaks at 1.13)
LIPSCHITZ = 1.2


def host_forward(x, params, act, output=None):
    """The MLP's forward pass on the host in float64: (output, [h₀ … h_L], [z₁ … z_L])."""
    h, zs, hs = np.asarray(x, dtype=np.float64), [], [np.asarray(x, dtype=np.float64)]
    for l, (W, b) in enumerate(params, 1):
        z = h @ np.asarray(W, dtype=np.float64).T + np.asarray(b, dtype=np.float64)
        h = HOST[output or "identity"](z) if l == len(params) else HOST[act](z)
        zs.append(z)
        hs.append(h)
    return h, hs, zs


def random_params(rng, sizes, dtype="float64"):
    """(W, b) pairs for layer sizes `sizes`: W ~ N(0, 1/n_in), b ~ N(0, 1/4)."""
    return [(rng.normal(0, 1 / math.sqrt(n_in), (n_out, n_in)).astype(dtype),
             rng.normal(0, 0.5, (n_out,)).astype(dtype))
            for n_in, n_out in itertools.pairwise(sizes)]


@st.composite
def mlp_case(draw):
    """(sizes, batch shape, activation, seed) of a random MLP of depth 1–4, widths 1–5."""
    depth = draw(st.integers(1, 4), label="depth")
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=depth + 1, max_size=depth + 1),
                       label="sizes"))
    batch = draw(st.sampled_from([(), (1,), (3,), (2, 2)]), label="batch")
    act = draw(st.sampled_from(ACTIVATIONS), label="activation")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return sizes, batch, act, seed


def _dot_scale(x, W, b=None):
    """Σ|x||Wᵀ| + |b|: the magnitude a dot product's rounding error is proportional to."""
    m = np.abs(np.asarray(x, dtype=np.float64)) @ np.abs(np.asarray(W, dtype=np.float64)).T
    return m if b is None else m + np.abs(np.asarray(b, dtype=np.float64))


def _close_to_dot(t, got, want, scale, what, factor=64):
    """|got − want| ≤ factor·eps·(scale + |want|) + tiny: dot products are accurate normwise
    (64 eps, as tolerances.VALUES, for the ≤ 6-term products drawn here); the smallest normal
    `tiny` allows backends that flush subnormal products to zero (XLA)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    bound = factor * t.eps * (np.asarray(scale) + np.abs(want)) + float(np.finfo(t.dtype).tiny)
    assert np.all(np.abs(got - want) <= bound), (
        f"{what}: max excess {np.max(np.abs(got - want) - bound)}\n got {got}\n want {want}")


@st.composite
def _dense_case(draw, dtype, *, bias=True):
    batch = draw(st.sampled_from([(), (1,), (4,), (2, 3)]), label="batch")
    n_in, n_out = draw(st.integers(1, 6), label="in"), draw(st.integers(1, 6), label="out")
    x = draw(cst.arrays(dtype, (*batch, n_in), min_value=-3, max_value=3), label="x")
    W = draw(cst.arrays(dtype, (n_out, n_in), min_value=-2, max_value=2), label="W")
    b = draw(cst.arrays(dtype, (n_out,), min_value=-2, max_value=2), label="b") if bias else None
    return x, W, b


# ---------------------------------------------------------------------------------- neuron
@prop("neuron", "is_dense_row")
def neuron_is_a_dense_row_and_matches_reference(impl, t):
    x, W, _ = t.draw(_dense_case(t.dtype, bias=False), label="case")
    w = W[0]
    b = np.asarray(t.draw(cst.floats(t.dtype, -2, 2), label="b"), dtype=t.dtype)
    act = t.draw(st.sampled_from(ACTIVATIONS), label="activation")
    xb, wb, bb = t.on(x, w, b)
    got = t.np(impl(xb, wb, bb, activation=act))
    assert got.shape == x.shape[:-1]
    scale = _dot_scale(x, w[None, :], b.reshape(1))[..., 0] * LIPSCHITZ
    row = t.np(spec.dense(xb, t.on(w[None, :]), t.on(b.reshape(1)), activation=act))[..., 0]
    _close_to_dot(t, got, row, scale, "neuron = dense row")
    want = HOST[act](x.astype(np.float64) @ w.astype(np.float64) + float(b))
    _close_to_dot(t, got, want, scale, "φ(w·x + b)")


# ----------------------------------------------------------------------------------- dense
@prop("dense", "batch_rows")
def dense_matches_reference_and_rows(impl, t):
    x, W, b = t.draw(_dense_case(t.dtype, bias=t.draw(st.booleans(), label="bias")),
                     label="case")
    act = t.draw(st.sampled_from([*ACTIVATIONS, None]), label="activation")
    args = [t.on(x), t.on(W)] + ([] if b is None else [t.on(b)])
    got = t.np(impl(*args, activation=act))
    assert got.shape == x.shape[:-1] + W.shape[:1]
    z = x.astype(np.float64) @ W.astype(np.float64).T + (0 if b is None else b)
    scale = _dot_scale(x, W, b) * LIPSCHITZ
    _close_to_dot(t, got, HOST[act or "identity"](z), scale, "φ(xWᵀ + b)")
    if x.ndim == 2:
        for r in range(x.shape[0]):
            one = t.np(impl(t.on(x[r]), *args[1:], activation=act))
            _close_to_dot(t, got[r], one, scale[r], f"row {r} alone")


@prop("dense", "linear_collapse")
def dense_linear_collapse(impl, t):
    x, W1, b1 = t.draw(_dense_case(t.dtype), label="layer 1")
    n_mid = W1.shape[0]
    n_out = t.draw(st.integers(1, 5), label="out")
    W2 = t.draw(cst.arrays(t.dtype, (n_out, n_mid), min_value=-2, max_value=2), label="W2")
    b2 = t.draw(cst.arrays(t.dtype, (n_out,), min_value=-2, max_value=2), label="b2")
    two = t.np(impl(impl(*t.on(x, W1, b1)), *t.on(W2, b2)))
    W = (W2.astype(np.float64) @ W1.astype(np.float64)).astype(t.dtype)
    b = (W2.astype(np.float64) @ b1.astype(np.float64) + b2).astype(t.dtype)
    one = t.np(impl(*t.on(x, W, b)))
    # both sides round products of sizes ≤ |x||W₁||W₂|: compare normwise at that scale
    scale = _dot_scale(_dot_scale(x, W1, b1), W2, b2)
    _close_to_dot(t, two, one, scale, "dense∘dense = dense", factor=128)


# ------------------------------------------------------------------------------------- MLP
def _params_on(t, params):
    return [tuple(t.on(W, b)) for W, b in params]


@prop("mlp_forward", "chain_of_dense")
def mlp_forward_is_a_chain_of_dense_layers(impl, t):
    sizes, batch, act, seed = t.draw(mlp_case(), label="case")
    output = t.draw(st.sampled_from([None, "sigmoid", "tanh"]), label="output")
    rng = np.random.default_rng(seed)
    params = random_params(rng, sizes, t.dtype)
    x = rng.normal(0, 1, (*batch, sizes[0])).astype(t.dtype)
    xb, pb = t.on(x), _params_on(t, params)
    out, cache = impl(xb, pb, activation=act, output=output)
    assert isinstance(cache, MLPCache)
    assert len(cache.h) == len(sizes) and len(cache.z) == len(sizes) - 1
    if compiled.active("P"):  # a compiled function returns new arrays holding the same values
        np.testing.assert_array_equal(t.np(cache.h[0]), t.np(xb))
        np.testing.assert_array_equal(t.np(cache.h[-1]), t.np(out))
    else:
        assert cache.h[0] is xb and cache.h[-1] is out
    want, hs, _ = host_forward(x, params, act, output)
    L = len(params)
    for l in range(1, L + 1):
        assert tuple(cache.z[l - 1].shape) == (*batch, sizes[l])
        assert tuple(cache.h[l].shape) == (*batch, sizes[l])
        # each stored value is the layer applied to the stored input of that layer
        z = t.np(spec.dense(cache.h[l - 1], *pb[l - 1]))
        np.testing.assert_array_equal(t.np(cache.z[l - 1]), z, err_msg=f"z_{l}")
    # against the independent float64 forward pass: each layer's error is at most
    # 64 eps normwise, amplified by the following layers' |W| (≤ 2.5 per layer here)
    scale = sum(np.max(_dot_scale(h, W, b)) for h, (W, b) in zip(hs[:-1], params)) * 3.0**L
    _close_to_dot(t, t.np(out), want, scale, "mlp_forward vs NumPy")


@prop("mlp_backward", "linear_in_delta")
def mlp_backward_linear_in_delta_and_sums_over_the_batch(impl, t):
    sizes, _, act, seed = t.draw(mlp_case(), label="case")
    a = t.draw(st.sampled_from([-2.0, 0.5, 3.0]), label="a")
    rng = np.random.default_rng(seed)
    params = random_params(rng, sizes, t.dtype)
    x = rng.normal(0, 1, (3, sizes[0])).astype(t.dtype)
    d1 = rng.normal(0, 1, (3, sizes[-1])).astype(t.dtype)
    d2 = rng.normal(0, 1, (3, sizes[-1])).astype(t.dtype)
    host_before = [np.array(w, copy=True) for p in params for w in p] + [x.copy()]
    xb, pb = t.on(x), _params_on(t, params)
    _, cache = spec.mlp_forward(xb, pb, activation=act)
    g1 = impl(t.on(d1), cache, pb, activation=act)
    g2 = impl(t.on(d2), cache, pb, activation=act)
    g = impl(t.on((a * d1 + d2).astype(t.dtype)), cache, pb, activation=act)
    # the gradients' relative tolerance, at (4×) the scale of the largest gradient: a sum of
    # products rounds relative to its terms' magnitudes, not to its (possibly cancelled) value
    scale = 4 * max(1.0, max(float(np.max(np.abs(t.np(w)))) for p in g1 + g2 for w in p))
    atol = t.grad_tol.rtol * scale
    for l in range(len(params)):
        for k in range(2):
            want = a * t.np(g1[l][k]) + t.np(g2[l][k])
            np.testing.assert_allclose(t.np(g[l][k]), want, rtol=0, atol=atol,
                                       err_msg=f"layer {l + 1}: linear in delta_out")
    # the batch's gradient is the sum of the single examples' gradients
    singles = []
    for r in range(3):
        _, c_r = spec.mlp_forward(t.on(x[r]), pb, activation=act)
        singles.append(impl(t.on(d1[r]), c_r, pb, activation=act))
    for l in range(len(params)):
        for k in range(2):
            total = sum(t.np(s[l][k]) for s in singles)
            np.testing.assert_allclose(t.np(g1[l][k]), total, rtol=0, atol=atol,
                                       err_msg=f"layer {l + 1}: sum over the batch")
    after = [t.np(w) for p in pb for w in p] + [t.np(xb)]
    for old, new in zip(host_before, after, strict=True):
        np.testing.assert_array_equal(new, old.astype(np.float64), err_msg="input modified")


# -------------------------------------------------------------------------------- counting
@prop("count_parameters", "mnist", draws=False)
def count_parameters_mnist(impl, t):
    assert impl([784, 128, 10]) == 101_770  # 001
    assert impl((2, 2, 1)) == 9
    assert impl(np.array([784, 128, 10])) == 101_770


@prop("count_parameters", "counts_arrays")
def count_parameters_counts_the_arrays(impl, t):
    sizes = t.draw(st.lists(st.integers(1, 40), min_size=2, max_size=6), label="sizes")
    xp = t.xp
    arrays = [a for n_in, n_out in itertools.pairwise(sizes)
              for a in (xp.zeros((n_out, n_in), device=t.backend.device),
                        xp.zeros((n_out,), device=t.backend.device))]
    assert impl(sizes) == sum(math.prod(a.shape) for a in arrays)


# --------------------------------------------------------------------------------- dropout
@prop("dropout", "two_values")
def dropout_two_values_and_rate_zero(impl, t):
    shape = t.draw(cst.shapes(max_dims=3), label="shape")
    x = t.draw(cst.arrays(t.dtype, shape), label="x")
    u = t.draw(cst.arrays(t.dtype, shape, min_value=0.0, max_value=0.999), label="u")
    rate = t.draw(st.sampled_from([0.1, 0.25, 0.5, 0.9]), label="rate")
    xb, ub = t.on(x, u)
    out = t.np(impl(xb, ub, rate=rate))
    keep = u >= rate
    assert np.all(out[~keep] == 0)
    t.close(out[keep], x[keep].astype(np.float64) / (1 - rate),
            what="survivors scaled by 1/(1 − p)")
    np.testing.assert_array_equal(t.np(impl(xb, ub, rate=0.0)), x.astype(np.float64),
                                  err_msg="rate 0 is the identity")


@prop("dropout", "expectation")
def dropout_preserves_the_expectation(impl, t):
    """N = 20,000 draws of u per unit (fixed seed): each output is x/(1 − p) with probability
    1 − p, else 0, so its variance is x²p/(1 − p) and the mean of N draws has standard error
    |x|·√(p/((1 − p)N)). Every unit's average is within 5 standard errors of x, plus the
    rounding of the outputs: each is x/(1 − p) with 1 − p and the quotient rounded to the
    dtype (≤ ε relative together), and the mean is taken in float64 on the host, so it is off
    by at most ε|x| (4ε|x| allowed). Hypothesis exhausts the three rates."""
    rate = t.draw(st.sampled_from([0.1, 0.5, 0.8]), label="rate")
    n = 20_000
    x = np.array([1.0, -2.0, 0.5, 3.0], dtype=t.dtype)
    u = np.random.default_rng(7).random((n, x.size)).astype(t.dtype)
    u = np.minimum(u, np.nextafter(np.asarray(1, t.dtype), np.asarray(0, t.dtype)))  # [0, 1)
    xs = np.broadcast_to(x, (n, x.size)).copy()
    out = t.np(impl(*t.on(xs, u), rate=rate))
    stderr = np.abs(x.astype(np.float64)) * math.sqrt(rate / ((1 - rate) * n))
    slack = 4 * t.eps * np.abs(x.astype(np.float64))
    assert np.all(np.abs(out.mean(axis=0) - x) <= 5 * stderr + slack), out.mean(axis=0)
    kept = np.mean(out != 0)
    assert abs(kept - (1 - rate)) <= 5 * math.sqrt(rate * (1 - rate) / (n * x.size))


# -------------------------------------------------------------------------- initialisation
@prop("he_normal_std", "preserves_second_moment", draws=False)
def he_initialisation_preserves_the_second_moment(impl, t):
    """x ~ N(0, 1) (B = 1024 rows, n = 256), z = relu(x) Wᵀ with W (m = 512, n) ~
    N(0, σ²), σ = he_normal_std(n), K = 8 independent draws of W (fixed seeds).

    E[z²] = n σ² E[relu(x)²] = 2 · ½ = 1 = E[x²]. The tolerance: given W,
    E[z_j²] = ½ Σᵢ W_ji² + (1/2π) Σ_{i≠k} W_ji W_jk (ReLU outputs have mean 1/√(2π)); over
    W the second sum has mean 0 and standard deviation ≈ (1/2π)·2√2 ≈ 0.45 per output unit,
    so ≈ 0.45/√(K·m) = 0.007 for the average; the finite batch adds ≈ 0.003 (the spread of
    ‖relu(x)‖²/n); together ≈ 0.008 (0.0077 measured over 40 seeds). Allow 0.04 (5σ).
    Through ten such layers (n = m = 512, B = 512) log E[h²] spreads with standard deviation
    0.23 (measured over 30 seeds: the shared weights correlate the rows), so He keeps the
    moment within [e^{−1.15}, e^{1.15}] (5σ), while σ = 1/√n halves it at every layer."""
    n, m, B, K = 256, 512, 1024, 8
    rng = np.random.default_rng(11)
    h = spec.relu(t.on(rng.standard_normal((B, n)).astype(t.dtype)))
    std = impl(n)
    moments = []
    for k in range(K):
        W = (np.random.default_rng(1000 + k).standard_normal((m, n)) * std).astype(t.dtype)
        z = t.np(spec.dense(h, t.on(W)))
        moments.append(float(np.mean(z**2)))
    assert abs(np.mean(moments) - 1.0) <= 0.04, moments

    n = B = 512
    x = t.on(np.random.default_rng(12).standard_normal((B, n)).astype(t.dtype))
    he, small = x, x
    for layer in range(10):
        w = np.random.default_rng(100 + layer).standard_normal((n, n))
        he = spec.dense(spec.relu(he), t.on((w * impl(n)).astype(t.dtype)))
        small = spec.dense(spec.relu(small), t.on((w / math.sqrt(n)).astype(t.dtype)))
    q = float(np.mean(t.np(he) ** 2))
    assert math.exp(-1.15) <= q <= math.exp(1.15), q
    assert float(np.mean(t.np(small) ** 2)) < 2.0**-7, "σ = 1/√n vanishes (2⁻¹⁰)"


@prop("xavier_std", "gains")
def xavier_gains_average_to_one(impl, t):
    """Linear layer y = x Wᵀ, W (n_out, n_in) ~ N(0, σ²), σ = xavier_std, x and g ~ N(0, 1)
    (B = 2000 rows, fixed seed): the forward gain E[y²]/E[x²] is n_in σ² = 2n_in/(n_in + n_out)
    and the backward gain E[(gW)²]/E[g²] is n_out σ² = 2n_out/(n_in + n_out); they average
    to 1. Each estimated gain has relative standard deviation ≈ √(2/(n_in n_out)) from W plus
    ≈ √(2/(B·min(n_in, n_out))) from the rows, ≈ 0.012 (0.010–0.012 measured over 40 seeds):
    allow 0.06 relative (5σ). Hypothesis exhausts the two layer shapes."""
    n_in, n_out = t.draw(st.sampled_from([(300, 100), (128, 128)]), label="fans")
    B = 2000
    rng = np.random.default_rng(3)
    sigma = impl(n_in, n_out)
    W = (rng.standard_normal((n_out, n_in)) * sigma).astype(t.dtype)
    x = rng.standard_normal((B, n_in)).astype(t.dtype)
    g = rng.standard_normal((B, n_out)).astype(t.dtype)
    fwd = float(np.mean(t.np(spec.dense(*t.on(x, W))) ** 2))
    bwd = float(np.mean(t.np(spec.dense(*t.on(g, W.T.copy()))) ** 2))
    fwd_gain, bwd_gain = 2 * n_in / (n_in + n_out), 2 * n_out / (n_in + n_out)
    assert abs(fwd / fwd_gain - 1) <= 0.06, fwd
    assert abs(bwd / bwd_gain - 1) <= 0.06, bwd
    assert abs((fwd + bwd) / 2 - 1) <= 0.06


# -------------------------------------------------------------------------------- residual
@prop("residual", "sum")
def residual_is_the_exactly_rounded_sum(impl, t):
    shape = t.draw(cst.shapes(max_dims=3), label="shape")
    x = t.draw(cst.arrays(t.dtype, shape, min_value=-1e6, max_value=1e6), label="x")
    fx = t.draw(cst.arrays(t.dtype, shape, min_value=-1e6, max_value=1e6), label="fx")
    got = t.backend.to_numpy(impl(*t.on(x, fx)))
    assert got.dtype == np.dtype(t.dtype)
    np.testing.assert_array_equal(got, x + fx, err_msg="one correctly rounded addition")


# ------------------------------------------------------------------------------------- XOR
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


@prop("xor_network", "solves_xor", draws=False)
def xor_network_solves_xor_exactly(impl, t):
    params = impl(xp=t.xp, dtype=t.backend.dtype(t.dtype), device=t.backend.device)
    out, _ = spec.mlp_forward(t.on(XOR_X.astype(t.dtype)), params, activation="relu")
    np.testing.assert_array_equal(t.backend.to_numpy(out)[:, 0], [0.0, 1.0, 1.0, 0.0])
    assert [tuple(W.shape) + tuple(b.shape) for W, b in params] == [(2, 2, 2), (1, 2, 1)]
    assert spec.count_parameters([2, 2, 1]) == sum(math.prod(a.shape) for p in params for a in p)


# ----------------------------------------------------------------------- linear regression
@prop("linear_regression_fit", "recovers")
def linear_regression_recovers_noiseless_parameters(impl, t):
    n_extra = t.draw(st.integers(0, 20), label="n_extra")
    d = t.draw(st.integers(1, 5), label="d")
    seed = t.draw(st.integers(0, 2**32 - 1), label="seed")
    offset = t.draw(st.sampled_from([0.0, 1e3]), label="offset")
    rng = np.random.default_rng(seed)
    n = 3 * (d + 1) + n_extra
    X = rng.uniform(-1, 1, (n, d)) + offset
    w, b = rng.normal(0, 2, d), float(rng.normal(0, 2))
    A = np.concatenate([X, np.ones((n, 1))], axis=1)
    cond = np.linalg.cond(A)
    assume(cond < 50 * (1 + offset))
    y = X @ w + b
    w_hat, b_hat = impl(*t.on(X.astype(t.dtype), y.astype(t.dtype)))
    assert tuple(w_hat.shape) == (d,) and tuple(b_hat.shape) == ()
    # a backward-stable least-squares solver on data that fits exactly: error ≲ cond(A)·eps
    # relative to θ, the inputs' own rounding to the dtype included (cond(A)·eps too); the
    # normal equations would square cond(A), which features offset by 1e3 make ≈ 1e4
    theta = np.append(w, b)
    bound = 16 * cond * t.eps * (1 + np.max(np.abs(theta)))
    got = np.append(t.np(w_hat), t.np(b_hat))
    assert np.max(np.abs(got - theta)) <= bound, (got, theta, bound)


@prop("linear_regression_fit", "zero_gradient", dtypes=("float64",))
def linear_regression_zero_gradient_and_least_squares(impl, t):
    n_extra = t.draw(st.integers(0, 30), label="n_extra")
    d = t.draw(st.integers(1, 4), label="d")
    seed = t.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    n = 3 * (d + 1) + n_extra
    X = rng.uniform(-1, 1, (n, d))
    y = X @ rng.normal(0, 2, d) + rng.normal(0, 1, n)
    A = np.concatenate([X, np.ones((n, 1))], axis=1)
    cond = np.linalg.cond(A)
    assume(cond < 50)
    w_hat, b_hat = impl(*t.on(X, y))
    theta = np.append(t.np(w_hat), t.np(b_hat))
    # ∂MSE/∂θ = (2/n) Aᵀ(Aθ − y) vanishes at the minimiser, up to the solver's backward error
    # (a backward-stable least-squares solver leaves a gradient of order
    # eps·‖A‖(‖A‖‖θ‖ + ‖y‖); no condition number enters)
    gradient = 2 / n * A.T @ (A @ theta - y)
    scale = np.linalg.norm(A) * (np.linalg.norm(A) * np.linalg.norm(theta) + np.linalg.norm(y))
    assert np.linalg.norm(gradient) <= 2 / n * 64 * t.eps * scale
    lstsq = np.linalg.lstsq(A, y, rcond=None)[0]
    # least squares with a residual: cond(A)²·eps relative to |θ| (the residual's term of
    # the perturbation bound carries the square, whatever the solver)
    np.testing.assert_allclose(theta, lstsq, rtol=0,
                               atol=16 * cond**2 * t.eps * (1 + np.max(np.abs(lstsq))))


@prop("linear_regression_fit", "recovers", draws=False)
def linear_regression_recovers_the_intercept_of_offset_features(impl, t):
    """Issue 12: with features offset by 1e6 the normal equations gave an intercept of 3489
    instead of 1 (float64, on every backend). The data are exact in float32 and float64
    (multiples of 1/4 near 1e6 and 3e6), so the error is the solver's alone: cond(A)·eps
    relative to θ for a backward-stable solver, where cond(A) ≈ 3e5 here."""
    k = np.arange(40, dtype=np.float64)
    X = (1e6 + (k * 7 % 40) / 4)[:, None]
    y = 3 * X[:, 0] + 1
    A = np.concatenate([X, np.ones((40, 1))], axis=1)
    cond = np.linalg.cond(A)
    w_hat, b_hat = impl(*t.on(X.astype(t.dtype), y.astype(t.dtype)))
    bound = 16 * cond * t.eps * 3
    got = np.append(t.np(w_hat), t.np(b_hat))
    assert np.max(np.abs(got - [3.0, 1.0])) <= bound, (got, bound)


@prop("linear_regression_fit", "recovers", dtypes=LOW_DTYPES)
def linear_regression_in_low_precision_is_float32_rounded(impl, t):
    """float16 and bfloat16 are fitted in float32 and rounded once: the result is within one
    ulp of the dtype (t.tol) of the float32 fit of the same (exactly widened) inputs."""
    d = t.draw(st.integers(1, 3), label="d")
    seed = t.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    n = 4 * (d + 1)
    X = rng.uniform(-1, 1, (n, d)).astype(host_dtype(t.dtype))
    y = (X.astype(np.float64) @ rng.normal(0, 2, d) + rng.normal(0, 2)).astype(
        host_dtype(t.dtype))
    A = np.concatenate([X.astype(np.float64), np.ones((n, 1))], axis=1)
    assume(np.linalg.cond(A) < 20)
    w_hat, b_hat = impl(*t.on(X, y))
    w32, b32 = spec.linear_regression_fit(X.astype(np.float32), y.astype(np.float32))
    # the float32 reference's own error is ≲ 16·cond·eps32·|θ| (as in `recovers`)
    slack = 16 * 20 * float(np.finfo(np.float32).eps) * (1 + float(np.max(np.abs(w32))))
    t.close(w_hat, round_to(w32, t.dtype), tol=Tol(rtol=t.tol.rtol, atol=t.tol.atol + slack),
            what="w")
    t.close(b_hat, round_to(np.asarray(b32), t.dtype),
            tol=Tol(rtol=t.tol.rtol, atol=t.tol.atol + slack), what="b")
