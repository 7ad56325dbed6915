"""What is benchmarked: one `Case` per equation family, its inputs at a given size, the work a
perfect kernel must do, and the framework's own kernel to race against.

A case turns a size (the number of elements of its main input, a power of two) into a
`Workload`: the spec call's positional arrays and keyword options, the bytes a perfect kernel
moves (each input read once, each output written once), a nominal FLOP count (multiply-adds
count two; exp, erf and the like count one), and, per library, the native kernel with its
own arguments (built outside the timed region, in the layout that kernel wants).

Shapes follow the way each equation is used in a model: rows of 1024 for the row-wise
equations (a hidden size; softmax over attention rows), a 32 768-way vocabulary for the
cross-entropy, heads of 64 for attention, d_model 512 for the attention and transformer
layers. Attention's work grows with the square of the sequence, so its sizes stop at 2²⁶
elements of q (the eager scores of the largest alone take 8 GB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

import spec

#: sizes (elements of the main input) for a full run and for --quick
FULL = (2**14, 2**18, 2**22, 2**26, 2**28)
QUICK = (2**14, 2**16)
QUADRATIC = (2**14, 2**18, 2**22, 2**24, 2**26)
#: the precisions timed; a backend without bfloat16 (NumPy, CuPy) skips it
PRECISIONS = ("float32", "bfloat16")


@dataclass
class Workload:
    """One timed call: ``fn(*args, **kwargs)`` with its cost model and native kernels."""

    args: tuple
    kwargs: dict
    bytes: int
    flops: float
    shape: str
    #: library name ('torch', 'jax', 'numpy', 'cupy') → zero-argument callable running that
    #: framework's own kernel on equivalent inputs
    native: dict[str, Callable[[], Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """An equation family: its spec function and how to build a workload of `n` elements."""

    name: str
    fn: Callable
    build: Callable[[Any, int, str], Workload]
    sizes: tuple[int, ...] = FULL
    #: 'memory' (bandwidth-bound) or 'compute' (matmul-bound): which roofline term dominates
    bound: str = "memory"


# ------------------------------------------------------------------ making inputs
def _host(shape, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)


def _put(backend, host: np.ndarray, precision: str):
    """Host float32 → the backend's device, then cast there (NumPy has no bfloat16)."""
    x = backend.asarray(host)
    if precision == "float32":
        return x
    return backend.xp.astype(x, _bf16(backend))


def _bf16(backend):
    if backend.library == "torch":
        return backend.torch.bfloat16
    if backend.library == "jax":
        return backend.jax.numpy.bfloat16
    raise ValueError(f"backend {backend.id!r} has no bfloat16")


def itemsize(precision: str) -> int:
    return {"float32": 4, "bfloat16": 2, "float64": 8}[precision]


def _rows(n: int, width: int) -> tuple[int, int]:
    width = min(width, n)
    return n // width, width


def _torch_f(backend):
    return backend.torch.nn.functional


# ------------------------------------------------------------------ row-wise and elementwise
def _rowwise(name: str, flops_per_element: float, out_per_row: bool = False):
    def build(backend, n, precision):
        shape = _rows(n, 1024)
        z = _put(backend, _host(shape, 0, 3.0), precision)
        out = shape[0] if out_per_row else n
        w = Workload((z,), {}, (n + out) * itemsize(precision), flops_per_element * n,
                     f"{shape[0]}×{shape[1]}")
        lib = backend.library
        if lib == "torch":
            torch = backend.torch
            w.native["torch"] = {"softmax": partial(torch.softmax, z, -1),
                                 "log_softmax": partial(torch.log_softmax, z, -1),
                                 "logsumexp": partial(torch.logsumexp, z, -1)}[name]
        elif lib == "jax":
            jnn = backend.jax.nn
            f = backend.jax.jit({"softmax": jnn.softmax, "log_softmax": jnn.log_softmax,
                                 # jax.nn.logsumexp reduces every axis unless told
                                 "logsumexp": partial(jnn.logsumexp, axis=-1)}[name])
            w.native["jax"] = partial(f, z)
        elif lib in ("numpy", "cupy"):
            special = _scipy_special(lib)
            if special is not None and hasattr(special, name):
                w.native[lib] = partial(getattr(special, name), z, axis=-1)
        return w

    return build


def _scipy_special(lib: str):
    try:
        if lib == "numpy":
            import scipy.special as special
        else:
            import cupyx.scipy.special as special
    except ImportError:
        return None
    return special


def _cross_entropy(backend, n, precision):
    shape = _rows(n, 32768)
    z = _put(backend, _host(shape, 1, 3.0), precision)
    labels = np.random.default_rng(2).integers(0, shape[1], shape[0])
    y = backend.asarray(labels)
    w = Workload((z, y), {}, n * itemsize(precision) + 8 * shape[0] + 4, 5.0 * n,
                 f"{shape[0]}×{shape[1]}")
    if backend.library == "torch":
        w.native["torch"] = partial(_torch_f(backend).cross_entropy, z, y)
    return w


def _elementwise(name: str, flops_per_element: float):
    def build(backend, n, precision):
        x = _put(backend, _host((n,), 3, 2.0), precision)
        w = Workload((x,), {}, 2 * n * itemsize(precision), flops_per_element * n, f"{n}")
        if backend.library == "torch":
            f = backend.torch.sigmoid if name == "sigmoid" else getattr(_torch_f(backend), name)
            w.native["torch"] = partial(f, x)
        elif backend.library == "jax":
            jnn = backend.jax.nn
            f = {"silu": jnn.silu, "sigmoid": jnn.sigmoid,
                 "gelu": partial(jnn.gelu, approximate=False)}[name]
            w.native["jax"] = partial(backend.jax.jit(f), x)
        elif backend.library in ("numpy", "cupy") and name == "sigmoid":
            special = _scipy_special(backend.library)
            if special is not None:
                w.native[backend.library] = partial(special.expit, x)
        return w

    return build


def _norm(name: str):
    def build(backend, n, precision):
        rows, d = _rows(n, 1024)
        x = _put(backend, _host((rows, d), 4, 2.0) + 5.0, precision)
        g = _put(backend, 1.0 + _host((d,), 5, 0.1), precision)
        b = _put(backend, _host((d,), 6, 0.1), precision)
        params = (x, g, b) if name == "layer_norm" else (x, g)
        flops = (8.0 if name == "layer_norm" else 5.0) * n
        w = Workload(params, {}, (2 * n + len(params[1:]) * d) * itemsize(precision), flops,
                     f"{rows}×{d}")
        if backend.library == "torch":
            F = _torch_f(backend)
            if name == "layer_norm":
                w.native["torch"] = partial(F.layer_norm, x, (d,), g, b, 1e-5)
            else:
                w.native["torch"] = partial(F.rms_norm, x, (d,), g, 1e-6)
        return w

    return build


def _rope(backend, n, precision):
    d = 128
    t = min(4096, n // d)
    heads = n // (t * d)
    x = _put(backend, _host((heads, t, d), 7), precision)
    positions = backend.asarray(np.arange(t, dtype=np.int64))
    # x read, positions read, result written; sin and cos of the angles are recomputed
    return Workload((x, positions), {}, 2 * n * itemsize(precision) + 8 * t, 3.0 * n,
                    f"{heads}×{t}×{d}")


def _adam(backend, n, precision):
    theta, m, grad = (_put(backend, _host((n,), s, 0.1), precision) for s in (8, 9, 10))
    v = _put(backend, np.abs(_host((n,), 11, 0.01)), precision)
    # read θ, m, v, g; write θ, m, v
    w = Workload((theta, m, v, grad), {"step": 10, "lr": 1e-3}, 7 * n * itemsize(precision),
                 12.0 * n, f"{n}")
    if backend.library == "torch":
        w.native["torch"] = _torch_adam(backend, theta, m, v, grad)
    return w


def _torch_adam(backend, theta, m, v, grad):
    """torch.optim.Adam with the fused kernel where this torch has it for the device."""
    torch = backend.torch
    p = torch.nn.Parameter(theta.clone())
    p.grad = grad.clone()
    try:
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    except (RuntimeError, ValueError):
        opt = torch.optim.Adam([p], lr=1e-3, foreach=True)
    # torch counts the step before using it: 9 here makes its update the spec's step 10
    opt.state[p] = {"step": torch.tensor(9.0), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    if getattr(opt, "defaults", {}).get("fused"):
        opt.state[p]["step"] = opt.state[p]["step"].to(theta.device)

    def native():
        opt.step()  # in place, as torch does it
        return p

    return native


# ------------------------------------------------------------------ attention and layers
def _attention(causal: bool):
    def build(backend, n, precision):
        d = 64
        t = min(2048, n // d)
        bh = n // (t * d)
        q, k, v = (_put(backend, _host((bh, t, d), s), precision) for s in (12, 13, 14))
        pairs = t * t / 2 if causal else t * t
        w = Workload((q, k, v), {"is_causal": causal}, 4 * n * itemsize(precision),
                     4.0 * bh * pairs * d, f"{bh}×{t}×{d}")
        if backend.library == "torch":
            w.native["torch"] = partial(_torch_f(backend).scaled_dot_product_attention, q, k, v,
                                        is_causal=causal)
        elif backend.library == "jax":
            jax = backend.jax
            # jax.nn.dot_product_attention takes (batch, seq, heads, head_dim)
            qkv = [jax.numpy.swapaxes(a[None], 1, 2) for a in (q, k, v)]
            f = jax.jit(partial(jax.nn.dot_product_attention, is_causal=causal))
            w.native["jax"] = partial(f, *qkv)
        return w

    return build


def _mha(backend, n, precision):
    d, heads = 512, 8
    t = min(1024, n // d)
    b = n // (t * d)
    x = _put(backend, _host((b, t, d), 15), precision)
    ws = [_put(backend, _host((d, d), 16 + i, 1 / math.sqrt(d)), precision) for i in range(4)]
    flops = 4 * 2.0 * b * t * d * d + 4.0 * b * t * t * d
    w = Workload((x, x, *ws), {"num_heads": heads}, (2 * n + 4 * d * d) * itemsize(precision),
                 flops, f"{b}×{t}×{d}, {heads} heads")
    if backend.library == "torch":
        torch = backend.torch
        F = _torch_f(backend)
        in_proj = torch.cat(ws[:3])
        xt = x.transpose(0, 1)  # (T, B, d): the layout multi_head_attention_forward takes

        def native():
            return F.multi_head_attention_forward(
                xt, xt, xt, d, heads, in_proj, None, None, None, False, 0.0, ws[3], None,
                training=False, need_weights=False)[0]

        w.native["torch"] = native
    return w


def _dense(backend, n, precision):
    d = 1024
    rows = max(1, n // d)
    x = _put(backend, _host((rows, d), 20), precision)
    W = _put(backend, _host((d, d), 21, 1 / math.sqrt(d)), precision)
    b = _put(backend, _host((d,), 22), precision)
    w = Workload((x, W, b), {}, (2 * rows * d + d * d + d) * itemsize(precision),
                 2.0 * rows * d * d + rows * d, f"{rows}×{d} · {d}×{d}")
    if backend.library == "torch":
        w.native["torch"] = partial(_torch_f(backend).linear, x, W, b)
    return w


def _mlp(backend, n, precision):
    d, hidden = 1024, 4096
    rows = max(1, n // d)
    x = _put(backend, _host((rows, d), 23), precision)
    layers = [(_put(backend, _host((hidden, d), 24, 1 / math.sqrt(d)), precision),
               _put(backend, _host((hidden,), 25, 0.1), precision)),
              (_put(backend, _host((d, hidden), 26, 1 / math.sqrt(hidden)), precision),
               _put(backend, _host((d,), 27, 0.1), precision))]
    weights = 2 * d * hidden + hidden + d
    # the forward pass keeps its cache (z₁, h₁; z₂ is the output): those writes are its job
    moved = (rows * d + weights + 2 * rows * hidden + rows * d) * itemsize(precision)
    return Workload((x, layers), {"activation": "gelu"}, moved, 4.0 * rows * d * hidden,
                    f"{rows}×{d} → {hidden} → {d}")


def _block(backend, n, precision):
    d, heads = 512, 8
    t = min(512, n // d)
    b = max(1, n // (t * d))
    x = _put(backend, _host((b, t, d), 30), precision)
    s = 1 / math.sqrt(d)
    shapes = {"ln1_gamma": (d,), "ln1_beta": (d,), "w_q": (d, d), "w_k": (d, d), "w_v": (d, d),
              "w_o": (d, d), "ln2_gamma": (d,), "ln2_beta": (d,), "w1": (4 * d, d),
              "b1": (4 * d,), "w2": (d, 4 * d), "b2": (d,)}
    host = {k: np.ones(v, np.float32) if "gamma" in k else _host(v, 32 + i, s)
            for i, (k, v) in enumerate(shapes.items())}
    params = {k: _put(backend, v, precision) for k, v in host.items()}
    weights = sum(math.prod(v) for v in shapes.values())
    flops = 8.0 * b * t * d * d + 2.0 * b * t * t * d + 16.0 * b * t * d * d
    w = Workload((x, params), {"num_heads": heads}, (2 * n + weights) * itemsize(precision),
                 flops, f"{b}×{t}×{d}, {heads} heads, causal")
    if backend.library == "torch":
        w.native["torch"] = _torch_block(backend, x, params, d, heads)
    return w


def _torch_block(backend, x, params, d, heads):
    """nn.TransformerEncoderLayer (pre-LN, GELU, causal) holding the same weights."""
    torch = backend.torch
    layer = torch.nn.TransformerEncoderLayer(
        d, heads, dim_feedforward=4 * d, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=True, device=x.device, dtype=x.dtype).eval()
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([params[k] for k in ("w_q", "w_k", "w_v")]))
        layer.self_attn.in_proj_bias.zero_()
        layer.self_attn.out_proj.weight.copy_(params["w_o"])
        layer.self_attn.out_proj.bias.zero_()
        layer.linear1.weight.copy_(params["w1"])
        layer.linear1.bias.copy_(params["b1"])
        layer.linear2.weight.copy_(params["w2"])
        layer.linear2.bias.copy_(params["b2"])
        for name, ln in (("ln1", layer.norm1), ("ln2", layer.norm2)):
            ln.weight.copy_(params[f"{name}_gamma"])
            ln.bias.copy_(params[f"{name}_beta"])
    t = x.shape[-2]
    mask = torch.nn.Transformer.generate_square_subsequent_mask(t, device=x.device,
                                                                dtype=x.dtype)

    def native():
        with torch.no_grad():
            return layer(x, src_mask=mask, is_causal=True)

    return native


CASES: dict[str, Case] = {c.name: c for c in (
    Case("softmax", spec.softmax, _rowwise("softmax", 5.0)),
    Case("log_softmax", spec.log_softmax, _rowwise("log_softmax", 5.0)),
    Case("logsumexp", spec.logsumexp, _rowwise("logsumexp", 4.0, out_per_row=True)),
    Case("softmax_cross_entropy", spec.softmax_cross_entropy, _cross_entropy,
         sizes=(2**15, 2**18, 2**22, 2**26, 2**28)),
    Case("gelu", spec.gelu, _elementwise("gelu", 20.0)),
    Case("silu", spec.silu, _elementwise("silu", 4.0)),
    Case("sigmoid", spec.sigmoid, _elementwise("sigmoid", 4.0)),
    Case("layer_norm", spec.layer_norm, _norm("layer_norm")),
    Case("rms_norm", spec.rms_norm, _norm("rms_norm")),
    Case("rope", spec.rope, _rope, sizes=(2**14, 2**18, 2**22, 2**26, 2**28)),
    Case("adam_step", spec.adam_step, _adam, sizes=(2**14, 2**18, 2**22, 2**26, 2**27)),
    Case("scaled_dot_product_attention", spec.scaled_dot_product_attention, _attention(False),
         sizes=QUADRATIC, bound="compute"),
    Case("scaled_dot_product_attention_causal", spec.scaled_dot_product_attention,
         _attention(True), sizes=QUADRATIC, bound="compute"),
    Case("multi_head_attention", spec.multi_head_attention, _mha,
         sizes=(2**14, 2**18, 2**22, 2**24), bound="compute"),
    Case("dense", spec.dense, _dense, bound="compute"),
    Case("mlp_forward", spec.mlp_forward, _mlp, sizes=(2**14, 2**18, 2**22, 2**24, 2**26),
         bound="compute"),
    Case("transformer_block", spec.transformer_block, _block,
         sizes=(2**14, 2**18, 2**22, 2**24), bound="compute"),
)}
