"""§5 Layers and networks: tiers S, P and D.

Tier S runs the spec's own code on SymPy expressions (once, independent of the backend under
test): the textbook formulas, the linear collapse, and backpropagation equal to SymPy's
gradient on explicit networks with symbolic weights. Tiers P and D run on every selected
backend and dtype; the backpropagation proof (tier D) compares `mlp_backward` with PyTorch's
autograd (an independent forward written in torch), the backend's own autograd and float64
central differences on random MLPs of depth 1–4. Tiers X, E and R: test_tiers.py.
"""

from __future__ import annotations

import itertools
import math

import array_api_compat
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import special

import spec
from conformance import compiled, derivatives, symbolic
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend
from conformance.tolerances import FINITE_DIFFERENCE, grads
from spec.layers import ACTIVATIONS, MLPCache

SMOOTH = ("identity", "sigmoid", "tanh", "gelu", "silu")
KINKED = ("relu", "leaky_relu")


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *host):
    return [to_backend(backend, a) for a in host]


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


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


def _host_forward(x, params, act, output=None):
    h, zs, hs = np.asarray(x, dtype=np.float64), [], [np.asarray(x, dtype=np.float64)]
    for l, (W, b) in enumerate(params, 1):
        z = h @ np.asarray(W, dtype=np.float64).T + np.asarray(b, dtype=np.float64)
        h = HOST[output or "identity"](z) if l == len(params) else HOST[act](z)
        zs.append(z)
        hs.append(h)
    return h, hs, zs


def _dot_scale(x, W, b=None):
    """Σ|x||Wᵀ| + |b|: the magnitude a dot product's rounding error is proportional to."""
    m = np.abs(np.asarray(x, dtype=np.float64)) @ np.abs(np.asarray(W, dtype=np.float64)).T
    return m if b is None else m + np.abs(np.asarray(b, dtype=np.float64))


def _close_to_dot(got, want, scale, dtype, what, factor=64):
    """|got − want| ≤ factor·eps·(scale + |want|) + tiny: dot products are accurate normwise;
    the smallest normal `tiny` allows backends that flush subnormal products to zero (XLA)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    bound = (factor * _eps(dtype) * (np.asarray(scale) + np.abs(want))
             + float(np.finfo(dtype).tiny))
    assert np.all(np.abs(got - want) <= bound), (
        f"{what}: max excess {np.max(np.abs(got - want) - bound)}\n got {got}\n want {want}")


# ============================================================================ tier S
def _sym_act(name):
    return {
        "identity": lambda z: z,
        "tanh": sp.tanh,
        "gelu": lambda z: z / 2 * (1 + sp.erf(z / sp.sqrt(2))),
        "relu": lambda z: sp.Max(0, z),
    }[name]


def _tidy(e):
    """A form in which the traced code and the textbook compare quickly and soundly.

    |u| → u: the only |·| in the traced networks is inside the spec's
    tanh'(u) = 4e^{−2|u|}/(1 + e^{−2|u|})², which is even in u, so this changes no value.
    tanh(u) → (1 − e^{−2u})/(1 + e^{−2u}). Then every exp(a) becomes a fresh symbol keyed on
    the expanded exponent a: an identity proven with the exponentials as independent symbols
    holds in particular for their true values.
    """
    e = sp.sympify(e).replace(sp.Abs, lambda u: u)
    e = e.replace(sp.tanh, lambda u: (1 - sp.exp(-2 * u)) / (1 + sp.exp(-2 * u)))
    return e


def _difference_is_zero(lhs, rhs) -> bool:
    d = _tidy(lhs) - _tidy(rhs)
    if d == 0:
        return True
    # a false identity shows a nonzero value at a random rational point at once (and is not
    # handed to a slow simplification); a true one is then proven exactly below
    symbols_ = sorted(d.free_symbols, key=str)
    draws = np.random.default_rng(5).integers(1, 997, len(symbols_))
    point = {s: sp.Rational(int(k), 331) for s, k in zip(symbols_, draws)}
    if abs(complex(d.subs(point).evalf(50))) > 1e-30:
        return False
    atoms: dict = {}

    def atom(arg):
        key = sp.expand(arg)
        return atoms.setdefault(key, sp.Symbol(f"E{len(atoms)}", positive=True))

    if sp.cancel(sp.together(d.replace(sp.exp, atom))) == 0:
        return True
    return symbolic.is_zero(d)  # an identity that needs relations between the exponentials


def _assert_equal(lhs, rhs, what):
    lhs = np.asarray(lhs, dtype=object)
    rhs = np.broadcast_to(np.asarray(rhs, dtype=object), lhs.shape)
    for idx in np.ndindex(lhs.shape):
        assert _difference_is_zero(lhs[idx], rhs[idx]), (
            f"{what}: not proven at {idx}: {lhs[idx]} ≠ {rhs[idx]}")


def _sym_net(sizes, batch):
    x = symbolic.symbols("x", (batch, sizes[0]))
    params = [(symbolic.symbols(f"W{l}_", (sizes[l], sizes[l - 1])),
               symbolic.symbols(f"b{l}_", (sizes[l],))) for l in range(1, len(sizes))]
    return x, params


def _textbook_forward(x, params, act, output="identity"):
    """Row by row with SymPy Matrices: h = φ(W h + b), the articles' column form."""
    rows = []
    for r in symbolic.exprs(x):
        h = sp.Matrix(list(r))
        for l, (W, b) in enumerate(params, 1):
            z = sp.Matrix(symbolic.exprs(W).tolist()) * h + sp.Matrix(symbolic.flat(b))
            h = z.applyfunc(_sym_act(output if l == len(params) else act))
        rows.append(list(h))
    return np.array(rows, dtype=object)


@pytest.mark.spec("neuron", tier="S")
@pytest.mark.parametrize("act", ["identity", "tanh", "gelu"])
def test_neuron_is_textbook_and_a_dense_row(act):
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2, 3))
    w = symbolic.symbols("w", (3,))
    b = symbolic.symbols("b", ())
    a = symbolic.exprs(spec.neuron(x, w, b, activation=None if act == "identity" else act))
    xs, ws, bs = symbolic.exprs(x), symbolic.flat(w), symbolic.exprs(b)[()]
    textbook = [_sym_act(act)(sp.Add(*[wi * xi for wi, xi in zip(ws, row)]) + bs) for row in xs]
    _assert_equal(a, textbook, "φ(w·x + b)")
    row = spec.dense(x, xp.reshape(w, (1, 3)), xp.reshape(b, (1,)), activation=act)
    _assert_equal(a, symbolic.exprs(row)[:, 0], "dense with one output row")


@pytest.mark.spec("dense", tier="S")
@pytest.mark.parametrize("act", ["identity", "tanh", "relu"])
def test_dense_is_textbook_affine_map(act):
    x, ((W, b),) = _sym_net((3, 2), 2)
    got = symbolic.exprs(spec.dense(x, W, b, activation=act))
    _assert_equal(got, _textbook_forward(x, [(W, b)], act, output=act), "φ(Wx + b)")
    no_bias = symbolic.exprs(spec.dense(x, W))
    xs, Ws = symbolic.exprs(x), symbolic.exprs(W)
    _assert_equal(no_bias, [[sp.Add(*[Ws[j, i] * xs[r, i] for i in range(3)]) for j in range(2)]
                            for r in range(2)], "x Wᵀ")


@pytest.mark.spec("dense", tier="S")
def test_dense_linear_collapse_symbolic():
    """Without activations, two layers are one: W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂)."""
    x, ((W1, b1), (W2, b2)) = _sym_net((3, 4, 2), 2)
    two = symbolic.exprs(spec.dense(spec.dense(x, W1, b1), W2, b2))
    one = symbolic.exprs(spec.dense(x, W2 @ W1, W2 @ b1 + b2))
    symbolic.assert_equal(two, one, "linear collapse")


@pytest.mark.spec("mlp_forward", tier="S")
@pytest.mark.parametrize(("act", "output", "sizes"),
                         [("tanh", None, (2, 3, 2)), ("gelu", "tanh", (2, 3, 2)),
                          ("relu", None, (2, 2, 3, 1))])
def test_mlp_forward_is_the_composition(act, output, sizes):
    x, params = _sym_net(sizes, 2)
    out, cache = spec.mlp_forward(x, params, activation=act, output=output)
    _assert_equal(symbolic.exprs(out), _textbook_forward(x, params, act, output or "identity"),
                  "φ_out(W_L φ(… φ(W₁x + b₁) …) + b_L)")
    assert cache.h[0] is x and len(cache.h) == len(sizes) and len(cache.z) == len(sizes) - 1
    for l in range(1, len(sizes)):
        z = spec.dense(cache.h[l - 1], *params[l - 1])
        symbolic.assert_equal(symbolic.exprs(cache.z[l - 1]), symbolic.exprs(z), f"z_{l}")


def _grad_check(params, grads, loss, what):
    for l, ((W, b), (dW, db)) in enumerate(zip(params, grads, strict=True), 1):
        assert tuple(dW.shape) == tuple(W.shape) and tuple(db.shape) == tuple(b.shape)
        Ws, bs = symbolic.exprs(W), symbolic.flat(b)
        truth_W = np.array([[sp.diff(loss, Ws[j, i]) for i in range(Ws.shape[1])]
                            for j in range(Ws.shape[0])], dtype=object)
        _assert_equal(symbolic.exprs(dW), truth_W, f"{what}: ∂L/∂W_{l}")
        _assert_equal(symbolic.exprs(db), [sp.diff(loss, bj) for bj in bs], f"{what}: ∂L/∂b_{l}")


@pytest.mark.spec("mlp_backward", tier="S")
@pytest.mark.parametrize(("act", "sizes", "batch"), [("tanh", (2, 3, 2), 2),
                                                     ("gelu", (2, 3, 2), 2),
                                                     ("tanh", (2, 3, 2, 2), 1)])
def test_mlp_backward_is_the_sympy_gradient(act, sizes, batch):
    """L = ⟨c, z_L⟩ with symbolic c, weights, biases and inputs (a batch of two, or one input
    through three layers, so the recurrence runs twice): SymPy differentiates the traced
    forward pass; mlp_backward(δ_L = c) must give exactly that. Non-square layers catch a
    transposed product, and the symbolic φ' a missing or misplaced one."""
    x, params = _sym_net(sizes, batch)
    c = symbolic.symbols("c", (batch, sizes[-1]))
    out, cache = spec.mlp_forward(x, params, activation=act)
    loss = sp.Add(*(symbolic.exprs(c) * symbolic.exprs(out)).reshape(-1))
    _grad_check(params, spec.mlp_backward(c, cache, params, activation=act), loss, "⟨c, z_L⟩")


@pytest.mark.spec("mlp_backward", tier="S")
def test_mlp_backward_of_mse_loss_is_the_sympy_gradient():
    """L = mse(z_L, t), traced; δ_L = ∂L/∂z_L = 2(z_L − t)/n (the MSE gradient of §4)."""
    x, params = _sym_net((2, 3, 2), 2)
    t = symbolic.symbols("t", (2, 2))
    out, cache = spec.mlp_forward(x, params, activation="gelu")
    loss = symbolic.exprs(spec.mse(out, t))[()]
    delta = 2 * (out - t) / 4
    _grad_check(params, spec.mlp_backward(delta, cache, params, activation="gelu"), loss, "MSE")


@pytest.mark.spec("dropout", tier="S")
@pytest.mark.parametrize("rate", [0.25, 0.5, 0.75])
def test_dropout_values_and_exact_expectation_on_a_grid(rate):
    """Over the N = 8 uniform grid points u = k/8 (an exact uniform distribution on them),
    the average of dropout(x, u) is exactly x when p is a multiple of 1/8."""
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (1, 2))
    xs = xp.broadcast_to(x, (8, 2))
    u = xp.asarray([[k / 8, (7 - k) / 8] for k in range(8)], dtype=xp.float64)
    out = symbolic.exprs(spec.dropout(xs, u, rate=rate))
    xe = symbolic.flat(x)
    for k in range(8):
        for j, uj in enumerate((k / 8, (7 - k) / 8)):
            symbolic.assert_equal([out[k, j]], [xe[j] / (1 - sp.nsimplify(rate)) if uj >= rate
                                                else 0], f"dropout at u = {uj}")
    # the code's constant 1/(1 − p) is a double; read it as the exact number it stands for
    mean = [sp.Add(*[symbolic._rationalise(sp.sympify(out[k, j])) for k in range(8)]) / 8
            for j in range(2)]
    symbolic.assert_equal(mean, xe, "E_u[dropout(x, u)] = x")
    symbolic.assert_equal(symbolic.exprs(spec.dropout(xs, u, rate=0.0)), symbolic.exprs(xs),
                          "rate 0 is the identity")


@pytest.mark.spec("he_normal_std", tier="S")
@pytest.mark.parametrize("fan_in", [1, 3, 128, 784])
def test_he_std_is_the_second_moment_fixed_point(fan_in):
    """E[relu(Z)²] = s²/2 for Z ~ N(0, s²) (SymPy integral); a layer z = W relu(x) with
    W ~ N(0, σ²) has E[z²] = n σ² E[relu(x)²] = n σ² E[x²]/2, which is E[x²] iff σ = √(2/n)."""
    z = sp.Symbol("z", real=True)
    s, sigma, n = sp.symbols("s sigma n", positive=True)
    density = sp.exp(-z**2 / (2 * s**2)) / (s * sp.sqrt(2 * sp.pi))
    second_moment = sp.integrate(z**2 * density, (z, 0, sp.oo))  # relu(z)² is 0 for z < 0
    assert sp.simplify(second_moment - s**2 / 2) == 0
    (root,) = sp.solve(sp.Eq(n * sigma**2 * second_moment / s**2, 1), sigma)
    assert sp.simplify(root - sp.sqrt(2 / n)) == 0
    exact = root.subs(n, fan_in)
    assert abs(spec.he_normal_std(fan_in) - float(exact)) <= _eps("float64") * float(exact)


@pytest.mark.spec("xavier_std", tier="S")
@pytest.mark.parametrize(("fan_in", "fan_out"), [(1, 1), (784, 128), (128, 10), (3, 300)])
def test_xavier_std_is_the_mean_of_the_two_requirements(fan_in, fan_out):
    """Forward variance is kept when n_in σ² = 1, backward when n_out σ² = 1; Glorot's σ²
    makes the two gains average to 1: (n_in σ² + n_out σ²)/2 = 1."""
    sigma, n_in, n_out = sp.symbols("sigma n_in n_out", positive=True)
    (root,) = sp.solve(sp.Eq((n_in * sigma**2 + n_out * sigma**2) / 2, 1), sigma)
    assert sp.simplify(root - sp.sqrt(2 / (n_in + n_out))) == 0
    exact = root.subs({n_in: fan_in, n_out: fan_out})
    assert abs(spec.xavier_std(fan_in, fan_out) - float(exact)) <= _eps("float64") * float(exact)


@pytest.mark.spec("residual", tier="S")
def test_residual_jacobian_is_identity_plus_branch():
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (3,))
    W = symbolic.symbols("W", (3, 3))
    fx = symbolic.symbols("f", (3,))
    xs = symbolic.flat(x)
    held = symbolic.exprs(spec.residual(x, fx))
    jac = sp.Matrix(list(held)).jacobian(xs)
    assert jac == sp.eye(3), "with F(x) held fixed, ∂h/∂x = I"
    branch = spec.dense(x, W, activation="tanh")
    h = symbolic.exprs(spec.residual(x, branch))
    jac_h = sp.Matrix(list(h)).jacobian(xs)
    jac_f = sp.Matrix(list(symbolic.exprs(branch))).jacobian(xs)
    symbolic.assert_equal(np.array((jac_h - jac_f).tolist(), dtype=object),
                          np.array(sp.eye(3).tolist(), dtype=object), "∂h/∂x − ∂F/∂x = I")
    assert xp is not None


@pytest.mark.spec("xor_network", tier="S")
def test_xor_network_exact_on_symbolic_numbers():
    xp = symbolic.backend().xp
    X = xp.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=xp.float64)
    out, _ = spec.mlp_forward(X, spec.xor_network(xp=xp), activation="relu")
    assert symbolic.exprs(out).reshape(-1).tolist() == [0, 1, 1, 0]
    assert spec.xor_network() == [([[1.0, 1.0], [1.0, 1.0]], [0.0, -1.0]),
                                  ([[1.0, -2.0]], [0.0])]


# ============================================================================ tier P
@st.composite
def _dense_case(draw, dtype, *, bias=True):
    batch = draw(st.sampled_from([(), (1,), (4,), (2, 3)]), label="batch")
    n_in, n_out = draw(st.integers(1, 6), label="in"), draw(st.integers(1, 6), label="out")
    x = draw(cst.arrays(dtype, (*batch, n_in), min_value=-3, max_value=3), label="x")
    W = draw(cst.arrays(dtype, (n_out, n_in), min_value=-2, max_value=2), label="W")
    b = draw(cst.arrays(dtype, (n_out,), min_value=-2, max_value=2), label="b") if bias else None
    return x, W, b


#: |φ(a) − φ(b)| ≤ Lip·|a − b| for these activations (GELU's slope peaks at 1.13)
LIPSCHITZ = 1.2


@pytest.mark.spec("neuron", tier="P")
@given(data=st.data())
def test_neuron_is_a_dense_row_and_matches_reference(backend, dtype, data):
    x, W, _ = data.draw(_dense_case(dtype, bias=False), label="case")
    w = W[0]
    b = np.asarray(data.draw(cst.floats(dtype, -2, 2), label="b"), dtype=dtype)
    act = data.draw(st.sampled_from(ACTIVATIONS), label="activation")
    xb, wb, bb = _on(backend, x, w, b)
    got = _np(backend, spec.neuron(xb, wb, bb, activation=act))
    assert got.shape == x.shape[:-1]
    scale = _dot_scale(x, w[None, :], b.reshape(1))[..., 0] * LIPSCHITZ
    row = _np(backend, spec.dense(xb, to_backend(backend, w[None, :]),
                                  to_backend(backend, b.reshape(1)), activation=act))[..., 0]
    _close_to_dot(got, row, scale, dtype, "neuron = dense row")
    want = HOST[act](x.astype(np.float64) @ w.astype(np.float64) + float(b))
    _close_to_dot(got, want, scale, dtype, "φ(w·x + b)")


@pytest.mark.spec("dense", tier="P")
@given(data=st.data())
def test_dense_matches_reference_and_rows(backend, dtype, data):
    x, W, b = data.draw(_dense_case(dtype, bias=data.draw(st.booleans(), label="bias")),
                        label="case")
    act = data.draw(st.sampled_from([*ACTIVATIONS, None]), label="activation")
    args = _on(backend, x, W) + ([] if b is None else _on(backend, b))
    got = _np(backend, spec.dense(*args, activation=act))
    assert got.shape == x.shape[:-1] + W.shape[:1]
    z = x.astype(np.float64) @ W.astype(np.float64).T + (0 if b is None else b)
    scale = _dot_scale(x, W, b) * LIPSCHITZ
    _close_to_dot(got, HOST[act or "identity"](z), scale, dtype, "φ(xWᵀ + b)")
    if x.ndim == 2:
        for r in range(x.shape[0]):
            one = _np(backend, spec.dense(to_backend(backend, x[r]), *args[1:], activation=act))
            _close_to_dot(got[r], one, scale[r], dtype, f"row {r} alone")


@pytest.mark.spec("dense", tier="P")
@given(data=st.data())
def test_dense_linear_collapse(backend, dtype, data):
    x, W1, b1 = data.draw(_dense_case(dtype), label="layer 1")
    n_mid = W1.shape[0]
    n_out = data.draw(st.integers(1, 5), label="out")
    W2 = data.draw(cst.arrays(dtype, (n_out, n_mid), min_value=-2, max_value=2), label="W2")
    b2 = data.draw(cst.arrays(dtype, (n_out,), min_value=-2, max_value=2), label="b2")
    two = _np(backend, spec.dense(spec.dense(*_on(backend, x, W1, b1)), *_on(backend, W2, b2)))
    W = (W2.astype(np.float64) @ W1.astype(np.float64)).astype(dtype)
    b = (W2.astype(np.float64) @ b1.astype(np.float64) + b2).astype(dtype)
    one = _np(backend, spec.dense(*_on(backend, x, W, b)))
    # both sides round products of sizes ≤ |x||W₁||W₂|: compare normwise at that scale
    scale = _dot_scale(_dot_scale(x, W1, b1), W2, b2)
    _close_to_dot(two, one, scale, dtype, "dense∘dense = dense", factor=128)


def _random_params(rng, sizes, dtype="float64"):
    return [(rng.normal(0, 1 / math.sqrt(n_in), (n_out, n_in)).astype(dtype),
             rng.normal(0, 0.5, (n_out,)).astype(dtype))
            for n_in, n_out in itertools.pairwise(sizes)]


@st.composite
def _mlp_case(draw):
    depth = draw(st.integers(1, 4), label="depth")
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=depth + 1, max_size=depth + 1),
                       label="sizes"))
    batch = draw(st.sampled_from([(), (1,), (3,), (2, 2)]), label="batch")
    act = draw(st.sampled_from(ACTIVATIONS), label="activation")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return sizes, batch, act, seed


def _params_on(backend, params):
    return [tuple(_on(backend, W, b)) for W, b in params]


@pytest.mark.spec("mlp_forward", tier="P")
@given(case=_mlp_case(), output=st.sampled_from([None, "sigmoid", "tanh"]))
def test_mlp_forward_is_a_chain_of_dense_layers(backend, dtype, case, output):
    sizes, batch, act, seed = case
    rng = np.random.default_rng(seed)
    params = _random_params(rng, sizes, dtype)
    x = rng.normal(0, 1, (*batch, sizes[0])).astype(dtype)
    xb, pb = to_backend(backend, x), _params_on(backend, params)
    out, cache = spec.mlp_forward(xb, pb, activation=act, output=output)
    assert isinstance(cache, MLPCache)
    assert len(cache.h) == len(sizes) and len(cache.z) == len(sizes) - 1
    if compiled.active("P"):  # a compiled function returns new arrays holding the same values
        np.testing.assert_array_equal(_np(backend, cache.h[0]), _np(backend, xb))
        np.testing.assert_array_equal(_np(backend, cache.h[-1]), _np(backend, out))
    else:
        assert cache.h[0] is xb and cache.h[-1] is out
    want, hs, _ = _host_forward(x, params, act, output)
    L = len(params)
    for l in range(1, L + 1):
        assert tuple(cache.z[l - 1].shape) == (*batch, sizes[l])
        assert tuple(cache.h[l].shape) == (*batch, sizes[l])
        # each stored value is the layer applied to the stored input of that layer
        z = _np(backend, spec.dense(cache.h[l - 1], *pb[l - 1]))
        np.testing.assert_array_equal(_np(backend, cache.z[l - 1]), z, err_msg=f"z_{l}")
    # against the independent float64 forward pass: each layer's error is at most
    # 64 eps normwise, amplified by the following layers' |W| (≤ 2.5 per layer here)
    scale = sum(np.max(_dot_scale(h, W, b)) for h, (W, b) in zip(hs[:-1], params)) * 3.0**L
    _close_to_dot(_np(backend, out), want, scale, dtype, "mlp_forward vs NumPy")


@st.composite
def _backprop_case(draw):
    sizes, batch, act, seed = draw(_mlp_case())
    loss = draw(st.sampled_from(["linear", "cross_entropy"] if sizes[-1] >= 2 else ["linear"]),
                label="loss")
    return sizes, batch, act, seed, loss


def _torch_reference(x, params, act, loss, target):
    """Gradients by PyTorch autograd through an independent forward pass written in torch."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    phi = {"identity": lambda z: z, "relu": torch.relu,
           "leaky_relu": lambda z: F.leaky_relu(z, 0.01), "sigmoid": torch.sigmoid,
           "tanh": torch.tanh, "gelu": F.gelu, "silu": F.silu}[act]
    leaves = [(torch.tensor(W, dtype=torch.float64, requires_grad=True),
               torch.tensor(b, dtype=torch.float64, requires_grad=True)) for W, b in params]
    h = torch.tensor(x, dtype=torch.float64)
    for l, (W, b) in enumerate(leaves, 1):
        z = h @ W.T + b
        h = z if l == len(leaves) else phi(z)
    if loss == "linear":
        value = (z * torch.tensor(target, dtype=torch.float64)).sum()
    else:
        value = F.cross_entropy(z.reshape(-1, z.shape[-1]),
                                torch.tensor(target, dtype=torch.long).reshape(-1))
    value.backward()
    return [(W.grad.numpy(), b.grad.numpy()) for W, b in leaves]


def _spec_loss(backend, loss, out, target_b):
    if loss == "linear":
        return backend.xp.sum(out * target_b)
    return spec.softmax_cross_entropy(out, target_b, reduction="mean")


def _spec_delta(loss, out, target_b):
    if loss == "linear":
        return target_b
    return spec.softmax_cross_entropy_grad(out, target_b, reduction="mean")


@pytest.mark.spec("mlp_backward", tier="D")
@given(case=_backprop_case())
def test_mlp_backward_equals_autograd_and_central_differences(backend, case):
    """The backpropagation recurrence on random MLPs (depth 1–4, widths 1–5, every
    activation, a linear loss ⟨c, z_L⟩ or softmax cross-entropy) equals (a) PyTorch autograd
    through an independent torch forward pass, (b) the backend's own autograd where it has
    one, and (c) float64 central differences of the spec's forward pass on the backend."""
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64 for central differences")
    sizes, batch, act, seed, loss = case
    rng = np.random.default_rng(seed)
    params = _random_params(rng, sizes)
    x = rng.normal(0, 1, (*batch, sizes[0]))
    if loss == "linear":
        target = rng.normal(0, 1, (*batch, sizes[-1]))
    else:
        target = rng.integers(0, sizes[-1], batch)
    _, _, zs = _host_forward(x, params, act)
    if act in KINKED and len(zs) > 1:
        # central differences are meaningless within a step h ≈ 6e-6 of a kink at 0
        assume(min(np.min(np.abs(z)) for z in zs[:-1]) > 1e-3)

    xb, pb = to_backend(backend, x), _params_on(backend, params)
    tb = to_backend(backend, target)
    out, cache = spec.mlp_forward(xb, pb, activation=act)
    got = spec.mlp_backward(_spec_delta(loss, out, tb), cache, pb, activation=act)
    got = [(_np(backend, dW), _np(backend, db)) for dW, db in got]
    assert [(g[0].shape, g[1].shape) for g in got] == [(W.shape, b.shape) for W, b in params]

    tol = grads("float64")
    reference = _torch_reference(x, params, act, loss, target)
    for l, ((dW, db), (rW, rb)) in enumerate(zip(got, reference, strict=True), 1):
        np.testing.assert_allclose(dW, rW, rtol=tol.rtol, atol=tol.atol, err_msg=f"dW{l} torch")
        np.testing.assert_allclose(db, rb, rtol=tol.rtol, atol=tol.atol, err_msg=f"db{l} torch")

    flat = [a for pair in params for a in pair]

    def loss_of(x_, *ps):
        pairs = list(zip(ps[0::2], ps[1::2]))
        o, _ = spec.mlp_forward(x_, pairs, activation=act)
        return _spec_loss(backend, loss, o, tb)

    if backend.has_autograd:
        auto = backend.vjp(lambda *ps: loss_of(xb, *ps), [a for p in pb for a in p],
                           backend.asarray(np.float64(1.0)))
        for i, a in enumerate(auto):
            np.testing.assert_allclose(_np(backend, a), got[i // 2][i % 2], rtol=tol.rtol,
                                       atol=tol.atol, err_msg=f"param {i}: backend autograd")
    for i in range(len(flat)):
        fd = derivatives.central_difference(backend, loss_of, [x, *flat], i + 1, np.float64(1.0))
        np.testing.assert_allclose(got[i // 2][i % 2], fd, rtol=FINITE_DIFFERENCE.rtol,
                                   atol=FINITE_DIFFERENCE.atol,
                                   err_msg=f"param {i}: central differences")


@pytest.mark.spec("mlp_backward", tier="P")
@given(case=_mlp_case(), a=st.sampled_from([-2.0, 0.5, 3.0]))
def test_mlp_backward_linear_in_delta_and_sums_over_the_batch(backend, dtype, case, a):
    sizes, _, act, seed = case
    rng = np.random.default_rng(seed)
    params = _random_params(rng, sizes, dtype)
    x = rng.normal(0, 1, (3, sizes[0])).astype(dtype)
    d1 = rng.normal(0, 1, (3, sizes[-1])).astype(dtype)
    d2 = rng.normal(0, 1, (3, sizes[-1])).astype(dtype)
    host_before = [np.array(t, copy=True) for p in params for t in p] + [x.copy()]
    xb, pb = to_backend(backend, x), _params_on(backend, params)
    _, cache = spec.mlp_forward(xb, pb, activation=act)
    g1 = spec.mlp_backward(to_backend(backend, d1), cache, pb, activation=act)
    g2 = spec.mlp_backward(to_backend(backend, d2), cache, pb, activation=act)
    g = spec.mlp_backward(to_backend(backend, (a * d1 + d2).astype(dtype)), cache, pb,
                          activation=act)
    scale = 4 * max(1.0, max(float(np.max(np.abs(_np(backend, t)))) for p in g1 + g2
                             for t in p))
    for l in range(len(params)):
        for k in range(2):
            want = a * _np(backend, g1[l][k]) + _np(backend, g2[l][k])
            np.testing.assert_allclose(_np(backend, g[l][k]), want, rtol=0,
                                       atol=grads(dtype).rtol * scale,
                                       err_msg=f"layer {l + 1}: linear in delta_out")
    # the batch's gradient is the sum of the single examples' gradients
    singles = []
    for r in range(3):
        _, c_r = spec.mlp_forward(to_backend(backend, x[r]), pb, activation=act)
        singles.append(spec.mlp_backward(to_backend(backend, d1[r]), c_r, pb, activation=act))
    for l in range(len(params)):
        for k in range(2):
            total = sum(_np(backend, s[l][k]) for s in singles)
            np.testing.assert_allclose(_np(backend, g1[l][k]), total, rtol=0,
                                       atol=grads(dtype).rtol * scale,
                                       err_msg=f"layer {l + 1}: sum over the batch")
    after = [_np(backend, t) for p in pb for t in p] + [_np(backend, xb)]
    for old, new in zip(host_before, after, strict=True):
        np.testing.assert_array_equal(new, old.astype(np.float64), err_msg="input modified")


@pytest.mark.spec("count_parameters", tier="P")
def test_count_parameters_mnist():
    assert spec.count_parameters([784, 128, 10]) == 101_770  # 001
    assert spec.count_parameters((2, 2, 1)) == 9
    assert spec.count_parameters(np.array([784, 128, 10])) == 101_770


@pytest.mark.spec("count_parameters", tier="P")
@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=6))
def test_count_parameters_counts_the_arrays(backend, sizes):
    xp = backend.xp
    arrays = [a for n_in, n_out in itertools.pairwise(sizes)
              for a in (xp.zeros((n_out, n_in), device=backend.device),
                        xp.zeros((n_out,), device=backend.device))]
    assert spec.count_parameters(sizes) == sum(math.prod(a.shape) for a in arrays)


@pytest.mark.spec("dropout", tier="P")
@given(data=st.data())
def test_dropout_two_values_and_rate_zero(backend, dtype, data):
    shape = data.draw(cst.shapes(max_dims=3), label="shape")
    x = data.draw(cst.arrays(dtype, shape), label="x")
    u = data.draw(cst.arrays(dtype, shape, min_value=0.0, max_value=0.999), label="u")
    rate = data.draw(st.sampled_from([0.1, 0.25, 0.5, 0.9]), label="rate")
    xb, ub = _on(backend, x, u)
    out = _np(backend, spec.dropout(xb, ub, rate=rate))
    keep = u >= rate
    assert np.all(out[~keep] == 0)
    assert_close(backend, out[keep], x[keep].astype(np.float64) / (1 - rate), dtype,
                 what="survivors scaled by 1/(1 − p)")
    np.testing.assert_array_equal(_np(backend, spec.dropout(xb, ub, rate=0.0)),
                                  x.astype(np.float64), err_msg="rate 0 is the identity")


@pytest.mark.spec("dropout", tier="P")
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_preserves_the_expectation(backend, dtype, rate):
    """N = 20,000 draws of u per unit (fixed seed): each output is x/(1 − p) with probability
    1 − p, else 0, so its variance is x²p/(1 − p) and the mean of N draws has standard error
    |x|·√(p/((1 − p)N)). Every unit's average is within 5 standard errors of x."""
    n = 20_000
    x = np.array([1.0, -2.0, 0.5, 3.0], dtype=dtype)
    u = np.random.default_rng(7).random((n, x.size)).astype(dtype)
    u = np.minimum(u, np.nextafter(np.asarray(1, dtype), np.asarray(0, dtype)))  # [0, 1)
    xs = np.broadcast_to(x, (n, x.size)).copy()
    out = _np(backend, spec.dropout(*_on(backend, xs, u), rate=rate))
    stderr = np.abs(x.astype(np.float64)) * math.sqrt(rate / ((1 - rate) * n))
    assert np.all(np.abs(out.mean(axis=0) - x) <= 5 * stderr + 1e-5), out.mean(axis=0)
    kept = np.mean(out != 0)
    assert abs(kept - (1 - rate)) <= 5 * math.sqrt(rate * (1 - rate) / (n * x.size))


@pytest.mark.spec("he_normal_std", tier="P")
def test_he_initialisation_preserves_the_second_moment(backend, dtype):
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
    h = spec.relu(to_backend(backend, rng.standard_normal((B, n)).astype(dtype)))
    std = spec.he_normal_std(n)
    moments = []
    for k in range(K):
        W = (np.random.default_rng(1000 + k).standard_normal((m, n)) * std).astype(dtype)
        z = _np(backend, spec.dense(h, to_backend(backend, W)))
        moments.append(float(np.mean(z**2)))
    assert abs(np.mean(moments) - 1.0) <= 0.04, moments

    n = B = 512
    x = to_backend(backend, np.random.default_rng(12).standard_normal((B, n)).astype(dtype))
    he, small = x, x
    for layer in range(10):
        w = np.random.default_rng(100 + layer).standard_normal((n, n))
        he = spec.dense(spec.relu(he),
                        to_backend(backend, (w * spec.he_normal_std(n)).astype(dtype)))
        small = spec.dense(spec.relu(small),
                           to_backend(backend, (w / math.sqrt(n)).astype(dtype)))
    q = float(np.mean(_np(backend, he) ** 2))
    assert math.exp(-1.15) <= q <= math.exp(1.15), q
    assert float(np.mean(_np(backend, small) ** 2)) < 2.0**-7, "σ = 1/√n vanishes (2⁻¹⁰)"


@pytest.mark.spec("xavier_std", tier="P")
@pytest.mark.parametrize(("n_in", "n_out"), [(300, 100), (128, 128)])
def test_xavier_gains_average_to_one(backend, dtype, n_in, n_out):
    """Linear layer y = x Wᵀ, W (n_out, n_in) ~ N(0, σ²), σ = xavier_std, x and g ~ N(0, 1)
    (B = 2000 rows, fixed seed): the forward gain E[y²]/E[x²] is n_in σ² = 2n_in/(n_in + n_out)
    and the backward gain E[(gW)²]/E[g²] is n_out σ² = 2n_out/(n_in + n_out); they average
    to 1. Each estimated gain has relative standard deviation ≈ √(2/(n_in n_out)) from W plus
    ≈ √(2/(B·min(n_in, n_out))) from the rows, ≈ 0.012 (0.010–0.012 measured over 40 seeds):
    allow 0.06 relative (5σ)."""
    B = 2000
    rng = np.random.default_rng(3)
    sigma = spec.xavier_std(n_in, n_out)
    W = (rng.standard_normal((n_out, n_in)) * sigma).astype(dtype)
    x = rng.standard_normal((B, n_in)).astype(dtype)
    g = rng.standard_normal((B, n_out)).astype(dtype)
    fwd = float(np.mean(_np(backend, spec.dense(*_on(backend, x, W))) ** 2))
    bwd = float(np.mean(_np(backend, spec.dense(*_on(backend, g, W.T.copy()))) ** 2))
    fwd_gain, bwd_gain = 2 * n_in / (n_in + n_out), 2 * n_out / (n_in + n_out)
    assert abs(fwd / fwd_gain - 1) <= 0.06, fwd
    assert abs(bwd / bwd_gain - 1) <= 0.06, bwd
    assert abs((fwd + bwd) / 2 - 1) <= 0.06


@pytest.mark.spec("residual", tier="P")
@given(data=st.data())
def test_residual_is_the_exactly_rounded_sum(backend, dtype, data):
    shape = data.draw(cst.shapes(max_dims=3), label="shape")
    x = data.draw(cst.arrays(dtype, shape, min_value=-1e6, max_value=1e6), label="x")
    fx = data.draw(cst.arrays(dtype, shape, min_value=-1e6, max_value=1e6), label="fx")
    got = backend.to_numpy(spec.residual(*_on(backend, x, fx)))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, x + fx, err_msg="one correctly rounded addition")


_XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


@pytest.mark.spec("xor_network", tier="P")
def test_xor_network_solves_xor_exactly(backend, dtype):
    params = spec.xor_network(xp=backend.xp, dtype=backend.dtype(dtype), device=backend.device)
    out, _ = spec.mlp_forward(to_backend(backend, _XOR_X.astype(dtype)), params,
                              activation="relu")
    np.testing.assert_array_equal(backend.to_numpy(out)[:, 0], [0.0, 1.0, 1.0, 0.0])
    assert [tuple(W.shape) + tuple(b.shape) for W, b in params] == [(2, 2, 2), (1, 2, 1)]
    assert spec.count_parameters([2, 2, 1]) == sum(math.prod(a.shape) for p in params for a in p)


@pytest.mark.spec("xor_network", tier="P")
def test_no_single_neuron_solves_xor(backend, dtype):
    """Exhaustive grid over (w₁, w₂, b) ∈ [−3, 3]³ (step 0.1): every neuron, thresholded at
    0.5 after a sigmoid, misclassifies at least one XOR point; the same search finds AND and
    OR (so it can succeed). And a linear program proves the inequalities infeasible."""
    grid = np.linspace(-3, 3, 61)
    w1, w2, b = (a.reshape(-1) for a in np.meshgrid(grid, grid, grid, indexing="ij"))
    W = np.stack([w1, w2], axis=1).astype(dtype)
    out = _np(backend, spec.dense(to_backend(backend, _XOR_X.astype(dtype)),
                                  *_on(backend, W, b.astype(dtype)), activation="sigmoid"))
    predicted = out > 0.5  # (4 points, 61³ neurons)
    for name, target in (("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])):
        solved = np.all(predicted == np.asarray(target, dtype=bool)[:, None], axis=0)
        assert solved.any() == (name != "xor"), name
    k = 7  # spot-check that the grid's neurons are the neuron equation
    single = _np(backend, spec.neuron(to_backend(backend, _XOR_X.astype(dtype)),
                                      *_on(backend, W[k], np.asarray(b[k], dtype=dtype)),
                                      activation="sigmoid"))
    assert_close(backend, single, out[:, k], dtype, what="neuron = dense row")
    from scipy.optimize import linprog

    # b ≤ −1, w₂ + b ≥ 1, w₁ + b ≥ 1, w₁ + w₂ + b ≤ −1 (any strict solution scales to these)
    A_ub = [[0, 0, 1], [0, -1, -1], [-1, 0, -1], [1, 1, 1]]
    res = linprog(np.zeros(3), A_ub=A_ub, b_ub=[-1, -1, -1, -1], bounds=[(None, None)] * 3)
    assert res.status == 2, "the XOR inequalities must be infeasible"


def _solve_limited(backend, d) -> bool:
    """dask's LU solve needs equal square chunks (the record's Limit, note "d ≥ 3")."""
    rec = spec.catalogue()["linear_regression_fit"]
    return d >= 3 and rec.limit(backend.id, "P", "d ≥ 3") is not None


@pytest.mark.spec("linear_regression_fit", tier="P")
@given(n_extra=st.integers(0, 20), d=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_linear_regression_recovers_noiseless_parameters(backend, dtype, n_extra, d, seed):
    assume(not _solve_limited(backend, d))
    rng = np.random.default_rng(seed)
    n = 3 * (d + 1) + n_extra
    X = rng.uniform(-1, 1, (n, d))
    w, b = rng.normal(0, 2, d), float(rng.normal(0, 2))
    A = np.concatenate([X, np.ones((n, 1))], axis=1)
    cond = np.linalg.cond(A)
    assume(cond < 50)
    y = X @ w + b
    w_hat, b_hat = spec.linear_regression_fit(*_on(backend, X.astype(dtype), y.astype(dtype)))
    assert tuple(w_hat.shape) == (d,) and tuple(b_hat.shape) == ()
    # the normal equations square the condition number: error ≲ cond(A)²·eps·|θ|, plus the
    # inputs' own rounding to the dtype (cond(A)·eps)
    theta = np.append(w, b)
    bound = 16 * cond**2 * _eps(dtype) * (1 + np.max(np.abs(theta)))
    got = np.append(_np(backend, w_hat), _np(backend, b_hat))
    assert np.max(np.abs(got - theta)) <= bound, (got, theta, bound)


@pytest.mark.spec("linear_regression_fit", tier="P")
@given(n_extra=st.integers(0, 30), d=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_linear_regression_zero_gradient_and_least_squares(backend, n_extra, d, seed):
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64")
    assume(not _solve_limited(backend, d))
    rng = np.random.default_rng(seed)
    n = 3 * (d + 1) + n_extra
    X = rng.uniform(-1, 1, (n, d))
    y = X @ rng.normal(0, 2, d) + rng.normal(0, 1, n)
    A = np.concatenate([X, np.ones((n, 1))], axis=1)
    cond = np.linalg.cond(A)
    assume(cond < 50)
    w_hat, b_hat = spec.linear_regression_fit(*_on(backend, X, y))
    theta = np.append(_np(backend, w_hat), _np(backend, b_hat))
    # ∂MSE/∂θ = (2/n) Aᵀ(Aθ − y) vanishes at the minimiser, up to the solve's backward error
    # (a backward-stable solve of the normal equations leaves a residual of order
    # eps·‖A‖(‖A‖‖θ‖ + ‖y‖) from forming AᵀA and Aᵀy; no condition number enters)
    gradient = 2 / n * A.T @ (A @ theta - y)
    scale = np.linalg.norm(A) * (np.linalg.norm(A) * np.linalg.norm(theta) + np.linalg.norm(y))
    assert np.linalg.norm(gradient) <= 2 / n * 64 * _eps("float64") * scale
    lstsq = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(theta, lstsq, rtol=0,
                               atol=16 * cond**2 * _eps("float64") * (1 + np.max(np.abs(lstsq))))


# ============================================================================ tier D
def _fixed(backend, fn, host_args: dict, **kwargs):
    """fn with the arguments at `host_args` positions held fixed (numbers in the SymPy trace,
    the backend's arrays otherwise), so the traced code takes the numeric code's branches."""
    on_backend = {i: to_backend(backend, a) for i, a in host_args.items()}

    def f(*free):
        x = free[0]
        if getattr(x, "device", None) == "sympy":
            xp = array_api_compat.array_namespace(x)
            fixed = {i: xp.asarray(a.tolist(), dtype=xp.float64) for i, a in host_args.items()}
        else:
            fixed = on_backend
        it = iter(free)
        return fn(*[fixed[i] if i in fixed else next(it)
                    for i in range(len(free) + len(fixed))], **kwargs)

    return f


def _act_grad(name):
    return {"tanh": spec.tanh_grad, "relu": spec.relu_grad, "gelu": spec.gelu_grad}[name]


def _mlp2(act):
    def f(x, W1, b1, W2, b2):
        return spec.mlp_forward(x, [(W1, b1), (W2, b2)], activation=act)[0]

    return f


def _mlp2_grad(act, k):
    """The closed form: mlp_backward's (dW, db) for parameter k ∈ 1..4, δ_L = cotangent."""
    def closed(xp, g, c):
        params = [(g[1], g[2]), (g[3], g[4])]
        _, cache = spec.mlp_forward(g[0], params, activation=act)
        grads_ = spec.mlp_backward(c, cache, params, activation=act)
        return grads_[(k - 1) // 2][(k - 1) % 2]

    return closed


def _layer_cases(backend, seed):
    r = np.random.default_rng(seed)
    x3, w3, b0 = r.normal(0, 1, (2, 3)), r.normal(0, 1, (3,)), np.asarray(r.normal())
    W43, b4 = r.normal(0, 1, (4, 3)), r.normal(0, 1, (4,))
    u = r.uniform(0, 1, (2, 3))
    W33 = r.normal(0, 0.5, (3, 3))
    xm = r.normal(0, 1, (2, 2))
    net = [r.normal(0, 1, (3, 2)), r.normal(0, 0.5, (3,)), r.normal(0, 1, (2, 3)),
           r.normal(0, 0.5, (2,))]
    cases = {}
    for act in ("tanh", "relu", "gelu"):
        g = _act_grad(act)

        def z_of(xp, a, act=act):
            return a[0] @ a[1] + a[2]

        cases[f"neuron[w,{act}]"] = (
            "neuron", lambda x, w, b, act=act: spec.neuron(x, w, b, activation=act),
            [x3, w3, b0], 1, lambda xp, a, c, g=g, z_of=z_of: xp.sum(
                (c * g(z_of(xp, a)))[:, None] * a[0], axis=0), {})
        cases[f"neuron[b,{act}]"] = (
            "neuron", lambda x, w, b, act=act: spec.neuron(x, w, b, activation=act),
            [x3, w3, b0], 2, lambda xp, a, c, g=g, z_of=z_of: xp.sum(c * g(z_of(xp, a))), {})
        cases[f"neuron[x,{act}]"] = (
            "neuron", lambda x, w, b, act=act: spec.neuron(x, w, b, activation=act),
            [x3, w3, b0], 0, lambda xp, a, c, g=g, z_of=z_of: (c * g(z_of(xp, a)))[:, None]
            * a[1], {})

        def dz(xp, a, c, g=g):
            return c * g(a[0] @ xp.matrix_transpose(a[1]) + a[2])

        def dense_fn(x, W, b, act=act):
            return spec.dense(x, W, b, activation=act)

        cases[f"dense[W,{act}]"] = ("dense", dense_fn, [x3, W43, b4], 1,
                                    lambda xp, a, c, dz=dz: xp.matrix_transpose(dz(xp, a, c))
                                    @ a[0], {})
        cases[f"dense[b,{act}]"] = ("dense", dense_fn, [x3, W43, b4], 2,
                                    lambda xp, a, c, dz=dz: xp.sum(dz(xp, a, c), axis=0), {})
        cases[f"dense[x,{act}]"] = ("dense", dense_fn, [x3, W43, b4], 0,
                                    lambda xp, a, c, dz=dz: dz(xp, a, c) @ a[1], {})
        for k, pname in enumerate(("W1", "b1", "W2", "b2"), 1):
            cases[f"mlp_backward[{pname},{act}]"] = ("mlp_backward", _mlp2(act), [xm, *net], k,
                                                    _mlp2_grad(act, k), {})
        cases[f"mlp_forward[x,{act}]"] = ("mlp_forward", _mlp2(act), [xm, *net], 0, None, {})
    cases["dropout"] = ("dropout", _fixed(backend, spec.dropout, {1: u}, rate=0.4), [x3], 0,
                        lambda xp, a, c: c * to_backend(backend, (u >= 0.4) / 0.6), {})
    cases["residual[x, F held]"] = ("residual", spec.residual, [x3, w3[None, :] + 0 * x3], 0,
                                    lambda xp, a, c: c, {})
    cases["residual[F]"] = ("residual", spec.residual, [x3, w3[None, :] + 0 * x3], 1,
                            lambda xp, a, c: c, {})

    def branch(x, W):
        return spec.residual(x, spec.dense(x, W, activation="tanh"))

    cases["residual[x, F = tanh(xWᵀ)]"] = (
        "residual", _fixed(backend, branch, {1: W33}), [x3], 0,
        lambda xp, a, c: c + (c * spec.tanh_grad(a[0] @ xp.matrix_transpose(
            to_backend(backend, W33)))) @ to_backend(backend, W33), {})
    return cases


def _layer_case_params():
    names = {}
    for act in ("tanh", "relu", "gelu"):
        for what in ("w", "b", "x"):
            names[f"neuron[{what},{act}]"] = "neuron"
        for what in ("W", "b", "x"):
            names[f"dense[{what},{act}]"] = "dense"
        for pname in ("W1", "b1", "W2", "b2"):
            names[f"mlp_backward[{pname},{act}]"] = "mlp_backward"
        names[f"mlp_forward[x,{act}]"] = "mlp_forward"
    names.update({"dropout": "dropout", "residual[x, F held]": "residual",
                  "residual[F]": "residual", "residual[x, F = tanh(xWᵀ)]": "residual"})
    return [pytest.param(c, marks=pytest.mark.spec(eq, tier="D"), id=c) for c, eq in names.items()]


@pytest.mark.parametrize("case", _layer_case_params())
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, case, seed):
    """SymPy (traced code, lambdified to the backend), autograd and central differences agree
    with each other and with the closed form: the layer's stated gradient, or mlp_backward."""
    _, fn, args, argnum, closed, assumptions = _layer_cases(backend, seed)[case]
    derivatives.check_agreement(backend, case, fn, args, argnum, {}, closed, assumptions,
                                seed=seed)

