"""§5 Layers and networks: what is specific to the chapter, tiers S and the special P and D
checks.

Tier S runs the spec's own code on SymPy expressions (once, independent of the backend under
test): the textbook formulas, the linear collapse, and backpropagation equal to SymPy's
gradient on explicit networks with symbolic weights. The backpropagation proof (tier D) compares
`mlp_backward` with PyTorch's autograd (an independent forward written in torch), the
backend's own autograd and float64 central differences on random MLPs of depth 1–4. Tier P is
in conformance/properties/layers.py and tier D's derivative cases in
conformance/records/layers.py, run by the generic tests (test_properties.py,
test_derivatives.py); tiers X, E and R: test_tiers.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

import spec
from conformance import derivatives, symbolic
from conformance.helpers import assert_close, np64, on, to_backend
from conformance.properties.layers import XOR_X, host_forward, mlp_case, random_params
from conformance.tolerances import FINITE_DIFFERENCE, grads

KINKED = ("relu", "leaky_relu")
#: ε of float64: the S tier's numbers are compared with Python's floats to one rounding
EPS64 = float(np.finfo(np.float64).eps)


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


@pytest.mark.spec("neuron", tier="S", identities=("textbook", "is_dense_row"))
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


@pytest.mark.spec("dense", tier="S", identity="textbook")
@pytest.mark.parametrize("act", ["identity", "tanh", "relu"])
def test_dense_is_textbook_affine_map(act):
    x, ((W, b),) = _sym_net((3, 2), 2)
    got = symbolic.exprs(spec.dense(x, W, b, activation=act))
    _assert_equal(got, _textbook_forward(x, [(W, b)], act, output=act), "φ(Wx + b)")
    no_bias = symbolic.exprs(spec.dense(x, W))
    xs, Ws = symbolic.exprs(x), symbolic.exprs(W)
    _assert_equal(no_bias, [[sp.Add(*[Ws[j, i] * xs[r, i] for i in range(3)]) for j in range(2)]
                            for r in range(2)], "x Wᵀ")


@pytest.mark.spec("dense", tier="S", identity="linear_collapse")
def test_dense_linear_collapse_symbolic():
    """Without activations, two layers are one: W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂)."""
    x, ((W1, b1), (W2, b2)) = _sym_net((3, 4, 2), 2)
    two = symbolic.exprs(spec.dense(spec.dense(x, W1, b1), W2, b2))
    one = symbolic.exprs(spec.dense(x, W2 @ W1, W2 @ b1 + b2))
    symbolic.assert_equal(two, one, "linear collapse")


@pytest.mark.spec("mlp_forward", tier="S", identity="composition")
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


@pytest.mark.spec("mlp_backward", tier="S", identity="sympy_gradient")
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


@pytest.mark.spec("mlp_backward", tier="S", identity="sympy_gradient")
def test_mlp_backward_of_mse_loss_is_the_sympy_gradient():
    """L = mse(z_L, t), traced; δ_L = ∂L/∂z_L = 2(z_L − t)/n (the MSE gradient of §4)."""
    x, params = _sym_net((2, 3, 2), 2)
    t = symbolic.symbols("t", (2, 2))
    out, cache = spec.mlp_forward(x, params, activation="gelu")
    loss = symbolic.exprs(spec.mse(out, t))[()]
    delta = 2 * (out - t) / 4
    _grad_check(params, spec.mlp_backward(delta, cache, params, activation="gelu"), loss, "MSE")


@pytest.mark.spec("dropout", tier="S", identities=("two_values", "expectation"))
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


@pytest.mark.spec("he_normal_std", tier="S", identity="fixed_point")
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
    assert abs(spec.he_normal_std(fan_in) - float(exact)) <= EPS64 * float(exact)


@pytest.mark.spec("xavier_std", tier="S", identity="compromise")
@pytest.mark.parametrize(("fan_in", "fan_out"), [(1, 1), (784, 128), (128, 10), (3, 300)])
def test_xavier_std_is_the_mean_of_the_two_requirements(fan_in, fan_out):
    """Forward variance is kept when n_in σ² = 1, backward when n_out σ² = 1; Glorot's σ²
    makes the two gains average to 1: (n_in σ² + n_out σ²)/2 = 1."""
    sigma, n_in, n_out = sp.symbols("sigma n_in n_out", positive=True)
    (root,) = sp.solve(sp.Eq((n_in * sigma**2 + n_out * sigma**2) / 2, 1), sigma)
    assert sp.simplify(root - sp.sqrt(2 / (n_in + n_out))) == 0
    exact = root.subs({n_in: fan_in, n_out: fan_out})
    assert abs(spec.xavier_std(fan_in, fan_out) - float(exact)) <= EPS64 * float(exact)


@pytest.mark.spec("residual", tier="S", identity="identity_path")
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


@pytest.mark.spec("xor_network", tier="S", identity="solves_xor")
def test_xor_network_exact_on_symbolic_numbers():
    xp = symbolic.backend().xp
    X = xp.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=xp.float64)
    out, _ = spec.mlp_forward(X, spec.xor_network(xp=xp), activation="relu")
    assert symbolic.exprs(out).reshape(-1).tolist() == [0, 1, 1, 0]
    assert spec.xor_network() == [([[1.0, 1.0], [1.0, 1.0]], [0.0, -1.0]),
                                  ([[1.0, -2.0]], [0.0])]


# ============================================================================ tier P
@pytest.mark.spec("xor_network", tier="P", identity="no_single_neuron")
def test_no_single_neuron_solves_xor(backend, dtype):
    """Exhaustive grid over (w₁, w₂, b) ∈ [−3, 3]³ (step 0.1): every neuron, thresholded at
    0.5 after a sigmoid, misclassifies at least one XOR point; the same search finds AND and
    OR (so it can succeed). And a linear program proves the inequalities infeasible.

    A fact about every single neuron, not a check of xor_network's implementation (which it
    never calls), so it stays here rather than among the properties."""
    grid = np.linspace(-3, 3, 61)
    w1, w2, b = (a.reshape(-1) for a in np.meshgrid(grid, grid, grid, indexing="ij"))
    W = np.stack([w1, w2], axis=1).astype(dtype)
    out = np64(backend, spec.dense(to_backend(backend, XOR_X.astype(dtype)),
                                   *on(backend, W, b.astype(dtype)), activation="sigmoid"))
    predicted = out > 0.5  # (4 points, 61³ neurons)
    for name, target in (("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])):
        solved = np.all(predicted == np.asarray(target, dtype=bool)[:, None], axis=0)
        assert solved.any() == (name != "xor"), name
    k = 7  # spot-check that the grid's neurons are the neuron equation
    single = np64(backend, spec.neuron(to_backend(backend, XOR_X.astype(dtype)),
                                       *on(backend, W[k], np.asarray(b[k], dtype=dtype)),
                                       activation="sigmoid"))
    assert_close(backend, single, out[:, k], dtype, what="neuron = dense row")
    from scipy.optimize import linprog

    # b ≤ −1, w₂ + b ≥ 1, w₁ + b ≥ 1, w₁ + w₂ + b ≤ −1 (any strict solution scales to these)
    A_ub = [[0, 0, 1], [0, -1, -1], [-1, 0, -1], [1, 1, 1]]
    res = linprog(np.zeros(3), A_ub=A_ub, b_ub=[-1, -1, -1, -1], bounds=[(None, None)] * 3)
    assert res.status == 2, "the XOR inequalities must be infeasible"


# ============================================================================ tier D
@st.composite
def _backprop_case(draw):
    sizes, batch, act, seed = draw(mlp_case())
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


@pytest.mark.spec("mlp_backward", tier="D", identity="backprop_recurrence")
@given(case=_backprop_case())
def test_mlp_backward_equals_autograd_and_central_differences(backend, case):
    """The backpropagation recurrence on random MLPs (depth 1–4, widths 1–5, every
    activation, a linear loss ⟨c, z_L⟩ or softmax cross-entropy) equals (a) PyTorch autograd
    through an independent torch forward pass, (b) the backend's own autograd where it has
    one, and (c) float64 central differences of the spec's forward pass on the backend.

    It stays here, beside the generic derivative cases of records/layers.py: each example is
    a new random network and loss, checked against an independent forward pass in torch."""
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64 for central differences")
    sizes, batch, act, seed, loss = case
    rng = np.random.default_rng(seed)
    params = random_params(rng, sizes)
    x = rng.normal(0, 1, (*batch, sizes[0]))
    if loss == "linear":
        target = rng.normal(0, 1, (*batch, sizes[-1]))
    else:
        target = rng.integers(0, sizes[-1], batch)
    _, _, zs = host_forward(x, params, act)
    if act in KINKED and len(zs) > 1:
        # central differences are meaningless within a step h ≈ 6e-6 of a kink at 0
        assume(min(np.min(np.abs(z)) for z in zs[:-1]) > 1e-3)

    xb, pb = to_backend(backend, x), [tuple(on(backend, W, b)) for W, b in params]
    tb = to_backend(backend, target)
    out, cache = spec.mlp_forward(xb, pb, activation=act)
    got = spec.mlp_backward(_spec_delta(loss, out, tb), cache, pb, activation=act)
    got = [(np64(backend, dW), np64(backend, db)) for dW, db in got]
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
            np.testing.assert_allclose(np64(backend, a), got[i // 2][i % 2], rtol=tol.rtol,
                                       atol=tol.atol, err_msg=f"param {i}: backend autograd")
    for i in range(len(flat)):
        fd = derivatives.central_difference(backend, loss_of, [x, *flat], i + 1, np.float64(1.0))
        np.testing.assert_allclose(got[i // 2][i % 2], fd, rtol=FINITE_DIFFERENCE.rtol,
                                   atol=FINITE_DIFFERENCE.atol,
                                   err_msg=f"param {i}: central differences")
