"""Adapters: a framework's kernel behind the spec's signature, so the checker can call it.

The checker (`conformance.check`) calls a candidate exactly as the conformance suite calls the
spec: `spec.softmax(z, axis=-1)`, `spec.layer_norm(x, gamma, beta, eps=1e-5)`,
`spec.scaled_dot_product_attention(q, k, v, mask=None, is_causal=False, scale=None)`, … with
the backend's arrays. A kernel with another signature is wrapped once:

    >>> import torch, torch.nn.functional as F
    >>> from conformance import adapters
    >>> from conformance.check import check
    >>> card = check(adapters.rowwise(torch.softmax), "softmax", backend="torch")
    >>> card = check(adapters.layer_norm(F.layer_norm), "layer_norm", backend="torch")
    >>> card = check(adapters.torch_sdpa(F.scaled_dot_product_attention),
    ...              "scaled_dot_product_attention", backend="torch")

An option of the spec that the kernel does not have (softmax's `temperature`, SiLU's `beta`)
is accepted at its default value only; any other value raises :class:`Unsupported`, and the
checker leaves that input out (a property that needs the option is reported "n/a", not
broken). Adapters translate *signatures and layouts* only, never semantics: a kernel that
aligns its causal mask differently, or gives NaN for a fully masked row, is measured as it
is.

The helpers:

=====================================  =========================================================
`rowwise(fn, axis="dim")`              softmax, log_softmax, logsumexp along one axis
                                       (torch.softmax, jax.nn.softmax, scipy.special.softmax)
`elementwise(fn, **options)`           sigmoid, erf, SiLU, GELU (torch, jax.nn, scipy.special)
`jax_gelu(fn)`                         jax.nn.gelu: its `approximate` is a bool
`cross_entropy(F.cross_entropy)`       torch's class axis is 1; the spec's is the last
`layer_norm(F.layer_norm)`             F.layer_norm(x, x.shape[-1:], w, b, eps)
`rms_norm(F.rms_norm)`                 F.rms_norm(x, x.shape[-1:], w, eps)
`torch_sdpa(F.scaled_dot_product_attention)`   (..., T, d) as torch takes it
`jax_sdpa(jax.nn.dot_product_attention)`       (B, T, N, H): one head per leading index
`torch_mha(F.multi_head_attention_forward)`    (T, B, d) and the packed in-projection
`linear(F.linear)`                     dense without an activation
`torch_adam(torch.optim.Adam)`         one step of the optimizer as a functional update
=====================================  =========================================================

Each returns a plain function; `adapter.kernel` is the wrapped kernel (for the report).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

__all__ = ["Unsupported", "cross_entropy", "elementwise", "jax_gelu", "jax_sdpa", "layer_norm",
           "linear", "only_default", "partial", "rms_norm", "rowwise", "scalar", "torch_adam",
           "torch_mha", "torch_sdpa"]


class Unsupported(Exception):
    """The kernel has no way to compute this call (an option it lacks, at a value other than
    the spec's default). The checker leaves the input out instead of calling it a failure."""


def scalar(value):
    """A NumPy scalar option (np.float64(0.5)) as the Python number a kernel takes."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def only_default(option: str, value, default) -> None:
    """Refuse an option the kernel lacks unless it has the spec's default value."""
    if value is not default and value != default:
        raise Unsupported(f"the kernel has no {option!r} option (asked for {option}={value!r})")


def _named(adapter: Callable, kernel: Callable, what: str) -> Callable:
    adapter.kernel = kernel
    adapter.__name__ = getattr(kernel, "__name__", what)
    adapter.__qualname__ = adapter.__name__
    adapter.__doc__ = f"{what}, behind the spec's signature (conformance.adapters)."
    return adapter


# ------------------------------------------------------------------ softmax and its family
def rowwise(fn: Callable, *, axis: str = "dim", keepdims: str | None = None) -> Callable:
    """softmax(z, axis=-1), log_softmax(z, axis=-1), logsumexp(z, axis=-1, keepdims=False)
    from a kernel `fn(z, <axis>=…)`: `axis="dim"` for torch, `"axis"` for JAX and SciPy.
    `keepdims` names the kernel's keepdims option (torch.logsumexp: "keepdim"; JAX, SciPy:
    "keepdims"); softmax's `temperature` is refused unless 1 (torch.softmax has none)."""

    def adapter(z, /, *, axis=-1, temperature=1.0, keepdims=False):
        only_default("temperature", temperature, 1.0)
        kw = {axis_name: scalar(axis)}
        if keepdims_name is not None:
            kw[keepdims_name] = keepdims
        else:
            only_default("keepdims", keepdims, False)
        return fn(z, **kw)

    axis_name, keepdims_name = axis, keepdims
    return _named(adapter, fn, "a row-wise kernel")


def elementwise(fn: Callable, **options: tuple[str, object]) -> Callable:
    """An elementwise kernel `fn(x)`. `options` maps a spec option to (the kernel's name for
    it, or None where the kernel lacks it, and the spec's default), e.g.
    ``elementwise(F.gelu, approximate=("approximate", "none"))`` or
    ``elementwise(F.silu, beta=(None, 1.0))``."""

    def adapter(x, /, **kwargs):
        call = {}
        for option, (name, default) in options.items():
            value = kwargs.pop(option, default)
            if name is None:
                only_default(option, value, default)
            else:
                call[name] = value
        if kwargs:
            raise Unsupported(f"the kernel has no option {', '.join(map(repr, kwargs))}")
        return fn(x, **call)

    # the options it takes, for the checker (which passes a bound option only where it is
    # taken): x, then each option at the spec's default
    P = inspect.Parameter
    adapter.__signature__ = inspect.Signature(
        [P("x", P.POSITIONAL_ONLY)] + [P(o, P.KEYWORD_ONLY, default=d)
                                       for o, (_, d) in options.items()])
    return _named(adapter, fn, "an elementwise kernel")


def jax_gelu(fn: Callable) -> Callable:
    """jax.nn.gelu(x, approximate: bool): the spec's approximate="none" | "tanh"."""

    def adapter(x, /, *, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise Unsupported(f"approximate={approximate!r}")
        return fn(x, approximate=approximate == "tanh")

    return _named(adapter, fn, "jax.nn.gelu")


def cross_entropy(fn: Callable) -> Callable:
    """softmax_cross_entropy(logits, labels, axis=-1, reduction="mean") from
    torch.nn.functional.cross_entropy(input, target, reduction=…), whose class axis is 1: the
    spec's class axis is moved there first."""

    def adapter(logits, labels, /, *, axis=-1, reduction="mean"):
        if logits.ndim > 1:
            logits = logits.movedim(axis, 1)
        elif axis not in (0, -1):
            raise Unsupported(f"axis={axis}")
        return fn(logits, labels, reduction=reduction)

    return _named(adapter, fn, "torch.nn.functional.cross_entropy")


# ------------------------------------------------------------------ normalisation
def _features(x, *params):
    """The affine parameters broadcast to x's last axis (the spec broadcasts γ of shape (1,);
    torch wants the normalised shape exactly)."""
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    return [xp.broadcast_to(p, tuple(x.shape[-1:])) for p in params]


def layer_norm(fn: Callable) -> Callable:
    """layer_norm(x, gamma, beta, eps=1e-5) from F.layer_norm(x, normalized_shape, weight,
    bias, eps), normalising the last axis (γ and β broadcast to it first)."""

    def adapter(x, gamma, beta, /, *, eps=1e-5):
        return fn(x, tuple(x.shape[-1:]), *_features(x, gamma, beta), scalar(eps))

    return _named(adapter, fn, "torch.nn.functional.layer_norm")


def rms_norm(fn: Callable) -> Callable:
    """rms_norm(x, gamma, eps=1e-6) from F.rms_norm(x, normalized_shape, weight, eps)
    (γ broadcast to the last axis first)."""

    def adapter(x, gamma, /, *, eps=1e-6):
        return fn(x, list(x.shape[-1:]), *_features(x, gamma), scalar(eps))

    return _named(adapter, fn, "torch.nn.functional.rms_norm")


# ------------------------------------------------------------------ attention
def torch_sdpa(fn: Callable) -> Callable:
    """scaled_dot_product_attention(q, k, v, mask=None, is_causal=False, scale=None) from
    F.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=…, scale=…). Both take
    (..., T, d), a boolean mask True where a key is attended and an additive float mask;
    torch refuses a mask together with is_causal (Unsupported here)."""

    def adapter(q, k, v, /, *, mask=None, is_causal=False, scale=None):
        if mask is not None and is_causal:
            raise Unsupported("torch's SDPA takes a mask or is_causal, not both")
        if mask is not None and not hasattr(mask, "dtype"):
            raise Unsupported("a mask that is not a tensor")
        return fn(q, k, v, attn_mask=mask, is_causal=bool(is_causal), scale=scalar(scale))

    return _named(adapter, fn, "torch.nn.functional.scaled_dot_product_attention")


def jax_sdpa(fn: Callable) -> Callable:
    """scaled_dot_product_attention from jax.nn.dot_product_attention(query, key, value,
    bias, mask, scale=, is_causal=), which takes (B, T, N, H) with exactly one batch axis and
    one head axis: the spec's leading axes are flattened into B, with one head. A boolean
    mask is passed as `mask` (True attends), an additive one as `bias`. JAX requires
    q's and v's head dimension to match k's (d_v = d_k)."""

    def adapter(q, k, v, /, *, mask=None, is_causal=False, scale=None):
        import jax.numpy as jnp

        lead = q.shape[:-2]
        if k.shape[:-2] != lead or v.shape[:-2] != lead:
            raise Unsupported("broadcast leading dimensions")
        if v.shape[-1] != k.shape[-1]:
            raise Unsupported("d_v ≠ d_k")
        b = math.prod(lead)

        def four(a):
            return jnp.reshape(a, (b, a.shape[-2], 1, a.shape[-1]))

        kwargs = {"scale": scalar(scale), "is_causal": bool(is_causal)}
        if mask is not None:
            m = jnp.broadcast_to(mask, (*lead, q.shape[-2], k.shape[-2]))
            m = jnp.reshape(m, (b, 1, q.shape[-2], k.shape[-2]))
            kwargs["mask" if m.dtype == jnp.bool_ else "bias"] = m
        out = fn(four(q), four(k), four(v), **kwargs)
        return jnp.reshape(out, (*lead, q.shape[-2], v.shape[-1]))

    return _named(adapter, fn, "jax.nn.dot_product_attention")


def torch_mha(fn: Callable) -> Callable:
    """multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads=, mask=, is_causal=)
    from F.multi_head_attention_forward, which takes (T, B, d), the three projections packed
    into one in_proj_weight, and a boolean mask True where a key is *not* attended (the
    opposite of the spec's): the mask is inverted here. Grouped-query heads are not in
    torch's kernel (Unsupported)."""

    def adapter(x_q, x_kv, w_q, w_k, w_v, w_o, /, *, num_heads, num_kv_heads=None, mask=None,
                is_causal=False):
        import torch

        only_default("num_kv_heads", num_kv_heads if num_kv_heads != num_heads else None, None)
        if x_q.ndim != 3:
            raise Unsupported("inputs other than (B, T, d)")
        d = x_q.shape[-1]
        attn_mask = None
        if mask is not None:
            attn_mask = ~mask if mask.dtype == torch.bool else mask
        if is_causal:
            t_q, t_k = x_q.shape[1], x_kv.shape[1]
            # the spec aligns the causal mask to the end (query i sees keys ≤ i + t_k − t_q)
            causal = torch.ones(t_q, t_k, dtype=torch.bool, device=x_q.device).tril(t_k - t_q)
            attn_mask = ~causal if attn_mask is None else attn_mask | ~causal
        out, _ = fn(x_q.transpose(0, 1), x_kv.transpose(0, 1), x_kv.transpose(0, 1), d,
                    num_heads, torch.cat([w_q, w_k, w_v]), None, None, None, False, 0.0, w_o,
                    None, training=False, need_weights=False, attn_mask=attn_mask)
        return out.transpose(0, 1)

    return _named(adapter, fn, "torch.nn.functional.multi_head_attention_forward")


# ------------------------------------------------------------------ layers and optimizers
def linear(fn: Callable) -> Callable:
    """dense(x, W, b=None) from F.linear(x, W, b) (y = x Wᵀ + b); the spec's `activation`
    is refused unless None."""

    def adapter(x, W, b=None, /, *, activation=None):
        only_default("activation", activation, None)
        return fn(x, W, b)

    return _named(adapter, fn, "torch.nn.functional.linear")


def torch_adam(optimizer: Callable, **options) -> Callable:
    """adam_step(theta, m, v, grad, step=, lr=, beta1=, beta2=, eps=) → (theta, m, v) from one
    `optimizer([p], lr=, betas=, eps=, **options).step()` (torch.optim.Adam): a fresh
    parameter holding θ with gradient g, and the optimizer state (step t − 1, m, v) loaded,
    as if t − 1 steps had run. torch counts the step before using it, so its state holds t − 1.
    The step runs under no_grad, so autograd does not see through it."""

    def adapter(theta, m, v, grad, /, *, step, lr=3e-4, beta1=0.9, beta2=0.999, eps=1e-8):
        import torch

        p = torch.nn.Parameter(theta.detach().clone())
        p.grad = grad.detach().clone()
        opt = optimizer([p], lr=scalar(lr), betas=(scalar(beta1), scalar(beta2)),
                        eps=scalar(eps), **options)
        opt.state[p] = {"step": torch.tensor(float(step - 1)),
                        "exp_avg": m.detach().clone(), "exp_avg_sq": v.detach().clone()}
        opt.step()
        state = opt.state[p]
        return p.detach(), state["exp_avg"], state["exp_avg_sq"]

    return _named(adapter, optimizer, "torch.optim.Adam")


def partial(fn: Callable, **fixed) -> Callable:
    """`fn` with keyword options fixed (functools.partial, named for the report)."""
    return _named(functools.partial(fn, **fixed), fn, getattr(fn, "__name__", "kernel"))
