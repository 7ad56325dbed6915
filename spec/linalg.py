r"""Linear algebra: dot products, norms, cosine similarity and the SVD-based matrix norms.

The vector functions reduce along `axis` (the feature axis, last by default) and accept any
number of leading batch dimensions; the matrix functions act on the last two axes of
(..., m, n) stacks. The SVD-based functions use the standard's ``linalg`` extension
(``svd``, ``matrix_norm``) of the inputs' namespace.

Dtypes: every function takes float16 and bfloat16 and computes in float32 (float16 products
overflow from entries of 256 up, a running float16 sum of ones stops at 2048, and no
namespace's SVD takes either dtype), returning the input dtype, rounded once; float32 and
float64 are computed as they are.

Sources: 001 (dot product, cosine similarity), 002 §1 (dot product, matrix multiplication,
SVD and low-rank approximation, norms), 002 §4.5 (vanishing gradients), 003, 004 (cosine
similarity for retrieval).
"""

from __future__ import annotations

from . import _validate as v
from ._registry import ALL_FLOATS, Identity, Limit, equation

__all__ = [
    "cosine_similarity",
    "dot",
    "frobenius_norm",
    "low_rank_approximation",
    "norm",
    "spectral_norm",
]

_DASK_SVD = "https://docs.dask.org/en/latest/generated/dask.array.linalg.svd.html"
_DASK_SVD_REASON = ("dask's SVD (behind linalg.svd and linalg.matrix_norm(ord=2)) only takes "
                    "matrices chunked along one dimension (tall-and-skinny or short-and-fat); "
                    "the dask backend chunks both axes")


def _linalg(xp, name: str):
    """The namespace's ``linalg.<name>``, or a clear error where the extension lacks it."""
    fn = getattr(getattr(xp, "linalg", None), name, None)
    if fn is None:
        raise NotImplementedError(
            f"the array namespace {getattr(xp, '__name__', xp)!r} has no linalg.{name} "
            "(the Array API standard's linalg extension), which this equation needs"
        )
    return fn


def _vector(x, name: str, axis):
    xp = v.namespace(**{name: x})
    v.floating(xp, x, name)
    v.min_ndim(x, 1, name)
    return xp, v.axis_index(x, axis, name)


def _vector_pair(x, y, axis):
    """Checks for two vectors; `axis` counts in their broadcast shape. Returns xp, axis, x, y
    broadcast to one shape."""
    xp = v.namespace(x=x, y=y)
    for name, a in (("x", x), ("y", y)):
        v.floating(xp, a, name)
        v.min_ndim(a, 1, name)
    v.same_dtype(x, y, "x and y")
    shape = v.broadcastable(x, y, "x and y")
    axis = v.axis_of_shape(shape, axis, "x and y (broadcast)")
    if tuple(x.shape) != shape or tuple(y.shape) != shape:
        x, y = xp.broadcast_arrays(x, y)
    return xp, axis, x, y


def _matrix(W, name: str = "W", *, nonempty: bool = False):
    xp = v.namespace(**{name: W})
    v.floating(xp, W, name)
    v.min_ndim(W, 2, name)
    if nonempty and (W.shape[-2] == 0 or W.shape[-1] == 0):
        raise ValueError(f"{name} must be a non-empty matrix (…, m, n) with m, n ≥ 1, got shape "
                         f"{tuple(W.shape)}")
    return xp


def _finite_matrices(xp, W):
    """W with each matrix that holds a NaN or ±∞ replaced by zeros, and the mask (...) of the
    finite ones. LAPACK's SVD does not converge on a non-finite entry (NumPy raises
    LinAlgError, torch its _LinAlgError): such matrices never reach it, and the caller puts
    the value the math gives back in their place."""
    finite = xp.all(xp.isfinite(W), axis=(-2, -1))
    return xp.where(finite[..., None, None], W, xp.zeros_like(W)), finite


def _scaled_norm(xp, x, axis: int, keepdims: bool):
    """‖x‖₂ along `axis` as s·√Σ(xᵢ/s)² with s = max|xᵢ|: the squares never overflow or
    underflow. s is replaced by 1 where it is 0 (an all-zero slice), ∞ or NaN, so those
    propagate as the plain formula says (0, ∞, NaN)."""
    if x.shape[axis] == 0:  # the empty sum: ‖x‖ = 0
        return xp.sum(x * x, axis=axis, keepdims=keepdims)
    s = xp.max(xp.abs(x), axis=axis, keepdims=True)
    s = xp.where((s > 0) & xp.isfinite(s), s, xp.ones_like(s))
    r = x / s
    out = s * xp.sqrt(xp.sum(r * r, axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="linalg",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §1.1.1", "003"),
    oracle="mpmath",
    identities=(
        Identity("symmetric", "x·y = y·x", "SP"),
        Identity("bilinear", "(ax + bz)·y = a(x·y) + b(z·y)", "SP"),
        Identity("norm_squared", "x·x = ‖x‖²", "SP"),
        Identity("matmul_transpose", "(AB)ᵀ = BᵀAᵀ on the backend's own matmul (no new function)",
                 "P"),
        Identity("matmul_associative", "A(BC) = (AB)C on the backend's own matmul", "P"),
        Identity("matmul_is_dots", "(AB)ᵢⱼ = Aᵢ· · B·ⱼ: every entry of a product is a dot", "P"),
        Identity("gradient", "∂(x·y)/∂x = y, by SymPy, autograd and differences", "D"),
        Identity("accuracy", "within its ulp budget of mpmath (normwise at Σ|xᵢyᵢ|)", "R"),
    ),
)
def dot(x, y, /, *, axis=-1):
    r"""Dot product of two vectors along `axis`, the similarity at the heart of every layer.

    .. math:: x \cdot y = x^\top y = \sum_i x_i y_i

    Shapes: x and y broadcastable, (..., n, ...) → the broadcast shape without `axis`.
    Dtypes: float16 and bfloat16 are computed in float32 (the products and their sum) and
    returned rounded once. Source: 001 (dot products), 002 §1.1.1, 003.
    """
    xp, axis, x, y = _vector_pair(x, y, axis)
    (x, y), dtype = v.widen(xp, x, y)
    return v.narrow(xp, xp.sum(x * y, axis=axis), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="linalg",
    dtypes=ALL_FLOATS,
    seeds=("002 §1.4",),
    oracle="mpmath",
    identities=(
        Identity("scaled_is_textbook", "the max-scaled code equals √Σxᵢ²", "S"),
        Identity("homogeneous", "‖cx‖ = |c|‖x‖", "SP"),
        Identity("triangle", "‖x + y‖ ≤ ‖x‖ + ‖y‖", "P"),
        Identity("dot_self", "‖x‖² = x·x", "SP"),
        Identity("no_overflow", "finite and accurate for |x| ≈ 1e200 and 1e-200 in float64 (and "
                 "their float32 analogues), where Σxᵢ² overflows or underflows", "PR"),
        Identity("special_values", "an all-zero slice has norm 0, an infinite entry gives ∞, "
                 "a NaN gives NaN, an empty axis gives 0", "PR"),
        Identity("gradient", "∂‖x‖/∂x = x/‖x‖", "D"),
    ),
)
def norm(x, /, *, axis=-1, keepdims=False):
    r"""Euclidean (L2) norm of vectors along `axis`, safe from overflow and underflow.

    .. math:: \|x\|_2 = \sqrt{\textstyle\sum_i x_i^2}
              = s \sqrt{\textstyle\sum_i (x_i / s)^2}, \qquad s = \max_i |x_i|

    Scaling by the largest magnitude keeps every square in [0, 1], so |x| ≈ 1e200 (whose
    squares overflow float64) and |x| ≈ 1e-200 (whose squares underflow to 0) both give the
    right norm. An all-zero slice has norm 0, an infinite entry gives ∞ and a NaN gives NaN;
    an empty axis gives 0. Shapes: x (..., n, ...) → x without `axis` (kept as size 1 with
    `keepdims`). Dtypes: float16 and bfloat16 are computed in float32 and returned rounded
    once. Source: 002 §1.4.
    """
    xp, axis = _vector(x, "x", axis)
    x, dtype = v.widen(xp, x)
    return v.narrow(xp, _scaled_norm(xp, x, axis, keepdims), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="linalg",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §1.1.1", "004"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "equals x·y/(‖x‖‖y‖) when ‖x‖, ‖y‖ ≥ ε", "S"),
        Identity("bounded", "−1 ≤ cos ≤ 1 (Cauchy–Schwarz), up to rounding", "P"),
        Identity("scale_invariant", "cos(ax, by) = cos(x, y) for a, b > 0", "SP"),
        Identity("parallel", "cos(x, cx) = 1 for c > 0 and −1 for c < 0", "SP"),
        Identity("no_overflow", "finite for |x|, |y| ≈ 1e200 (‖x‖‖y‖ would overflow)", "R"),
        Identity("gradient", "∂cos/∂x = (ŷ − cos·x̂)/‖x‖ (hats: unit vectors)", "D"),
    ),
)
def cosine_similarity(x, y, /, *, axis=-1, eps=1e-8):
    r"""Cosine of the angle between two vectors: their dot product over their norms.

    .. math:: \cos(x, y) = \frac{x \cdot y}{\max(\|x\|, \epsilon)\,\max(\|y\|, \epsilon)}

    Each vector is divided by its own (overflow-safe) norm before the dot product, so huge
    vectors do not overflow ‖x‖‖y‖. ε guards a zero vector (whose similarity is 0), as in
    PyTorch's ``cosine_similarity``; below ε the result is no longer scale invariant.
    Rounding can put the result a few ulp outside [−1, 1]; it is not clipped.
    Shapes: x and y broadcastable, (..., n, ...) → the broadcast shape without `axis`.
    Dtypes: float16 and bfloat16 are computed in float32 and returned rounded once.
    Source: 001, 002 §1.1.1, 004 (retrieval by cosine similarity).
    """
    xp, axis, x, y = _vector_pair(x, y, axis)
    eps = v.positive_number(eps, "eps")
    (x, y), dtype = v.widen(xp, x, y)
    x_hat = x / xp.clip(_scaled_norm(xp, x, axis, True), min=eps)
    y_hat = y / xp.clip(_scaled_norm(xp, y, axis, True), min=eps)
    return v.narrow(xp, xp.sum(x_hat * y_hat, axis=axis), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="linalg",
    dtypes=ALL_FLOATS,
    seeds=("002 §1.4", "002 §1.3"),
    oracle="mpmath",
    identities=(
        Identity("flattened_norm", "equals `norm` of the flattened matrix", "SP"),
        Identity("trace", "‖W‖_F² = tr(WᵀW)", "SP"),
        Identity("singular_values", "‖W‖_F² = Σσᵢ² (singular values from NumPy)", "P"),
        Identity("no_overflow", "finite for entries ≈ 1e200 in float64", "R"),
        Identity("gradient", "∂‖W‖_F/∂W = W/‖W‖_F", "D"),
    ),
)
def frobenius_norm(W, /):
    r"""Frobenius norm of a matrix: the Euclidean norm of all its entries.

    .. math:: \|W\|_F = \sqrt{\textstyle\sum_{i,j} W_{ij}^2}
              = \sqrt{\operatorname{tr}(W^\top W)}

    Computed as the overflow-safe `norm` of the flattened matrix.
    Shapes: W (..., m, n) → (...). Dtypes: float16 and bfloat16 are computed in float32 and
    returned rounded once. Source: 002 §1.4; equals √Σσᵢ² by the SVD of 002 §1.3.
    """
    xp = _matrix(W)
    W, dtype = v.widen(xp, W)
    flat = xp.reshape(W, (*W.shape[:-2], W.shape[-2] * W.shape[-1]))
    return v.narrow(xp, _scaled_norm(xp, flat, flat.ndim - 1, False), dtype)


# --------------------------------------------------------------------------------------------
def _svd_limit(note: str = "", tiers: str = "PDRX") -> Limit:
    return Limit("dask", _DASK_SVD_REASON, _DASK_SVD, tiers=tiers, note=note)


@equation(
    chapter="linalg",
    dtypes=ALL_FLOATS,
    seeds=("002 §1.3",),
    tiers="PDRXE",
    oracle="mpmath",
    identities=(
        Identity("eckart_young", "‖W − W_k‖_F² = Σ_{i>k} σᵢ² (the error of the best rank-k "
                 "approximation), and no random rank-k matrix does better", "P"),
        Identity("rank", "rank(W_k) ≤ k: its singular values beyond the k-th vanish", "P"),
        Identity("idempotent", "the rank-k approximation of W_k is W_k", "P"),
        Identity("full_rank_identity", "k = min(m, n) gives W back; k = 0 gives 0", "P"),
        Identity("special_values", "a matrix with a NaN or an infinite entry gives all NaN "
                 "(its SVD does not exist), never an error of the backend's SVD", "PR"),
        Identity("gradient", "∂‖W − W_k‖_F²/∂W = 2(W − W_k) (autograd, differences)", "D"),
        Identity("accuracy", "within its ulp budget of an mpmath SVD (normwise at σ₁)", "R"),
    ),
    limits=(_svd_limit(),),
)
def low_rank_approximation(W, /, *, rank):
    r"""Best rank-k approximation of a matrix, by truncating its singular value decomposition.

    .. math:: W_k = U_k \Sigma_k V_k^\top = \sum_{i=1}^{k} \sigma_i u_i v_i^\top,
              \qquad W = U \Sigma V^\top,\ \sigma_1 \ge \sigma_2 \ge \dots

    By the Eckart–Young theorem W_k is the closest rank-k matrix to W in the Frobenius (and
    spectral) norm, with error ‖W − W_k‖_F² = Σ_{i>k} σᵢ² — the idea behind weight
    compression and LoRA. Uses the namespace's ``linalg.svd`` (reduced, ``full_matrices=
    False``). Shapes: W (..., m, n) → (..., m, n); 0 ≤ rank ≤ min(m, n) (an int).
    When σ_k = σ_{k+1} the best approximation is not unique and W_k is one of them.
    A matrix with a NaN or an infinite entry has no SVD: its W_k is all NaN (for every rank),
    as NaN propagates in the rest of the spec, never an error of the backend's SVD.
    Dtypes: float16 and bfloat16 are computed in float32 (no namespace's SVD takes them) and
    returned rounded once. Source: 002 §1.3.
    """
    xp = _matrix(W, nonempty=True)
    k = v.integer_option(rank, "rank")
    most = min(W.shape[-2], W.shape[-1])
    if not 0 <= k <= most:
        raise ValueError(f"rank must be in [0, min(m, n)] = [0, {most}] for W of shape "
                         f"{tuple(W.shape)}, got {k}")
    W, dtype = v.widen(xp, W)
    safe, finite = _finite_matrices(xp, W)
    u, s, vh = _linalg(xp, "svd")(safe, full_matrices=False)
    out = (u[..., :, :k] * s[..., None, :k]) @ vh[..., :k, :]
    out = xp.where(finite[..., None, None], out, xp.full_like(out, float("nan")))
    return v.narrow(xp, out, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="linalg",
    dtypes=ALL_FLOATS,
    seeds=("002 §1.3", "002 §4.5"),
    tiers="PDRXE",
    oracle="mpmath",
    identities=(
        Identity("operator_norm", "‖Wx‖ ≤ σ_max‖x‖ for every x, with equality at the top right "
                 "singular vector", "P"),
        Identity("largest_singular_value", "equals the largest of the backend's singular "
                 "values and is ≤ ‖W‖_F", "P"),
        Identity("vanishing_gradients", "a product of L Jacobians with σ_max ≤ s < 1 shrinks "
                 "every vector at least geometrically: ‖J_L⋯J_1 g‖ ≤ sᴸ‖g‖ (002 §4.5)", "P"),
        Identity("special_values", "a NaN entry gives NaN and an infinite one (without a NaN) "
                 "∞, never an error of the backend's SVD", "PR"),
        Identity("gradient", "∂σ_max/∂W = u₁v₁ᵀ (top singular vectors), against autograd and "
                 "central differences", "D"),
        Identity("accuracy", "within its ulp budget of an mpmath SVD", "R"),
    ),
    limits=(_svd_limit("2×2 chunked both ways", tiers="XR"),
            _svd_limit("a stack of 3×2", tiers="XR"),
            _svd_limit("a stack with one ∞ and one NaN matrix", tiers="XR"),
            _svd_limit(tiers="PD")),
)
def spectral_norm(W, /):
    r"""Spectral norm of a matrix: its largest singular value, the most it stretches a vector.

    .. math:: \|W\|_2 = \sigma_{\max}(W) = \max_{x \ne 0} \frac{\|W x\|}{\|x\|}

    Through the standard's ``linalg.matrix_norm(W, ord=2)``. A layer's Jacobian with
    σ_max < 1 shrinks the gradient passing back through it; a product of L of them shrinks it
    by at least σᴸ (vanishing gradients, 002 §4.5). Shapes: W (..., m, n) → (...).
    A NaN entry gives NaN and an infinite one (without a NaN) ∞, the supremum above, never an
    error of the backend's SVD. Dtypes: float16 and bfloat16 are computed in float32 (no
    namespace's SVD takes them) and returned rounded once.
    Source: 002 §1.3 (singular values), 002 §4.5.
    """
    xp = _matrix(W, nonempty=True)
    W, dtype = v.widen(xp, W)
    safe, finite = _finite_matrices(xp, W)
    s = _linalg(xp, "matrix_norm")(safe, ord=2)
    unbounded = xp.where(xp.any(xp.isnan(W), axis=(-2, -1)), xp.full_like(s, float("nan")),
                         xp.full_like(s, float("inf")))
    return v.narrow(xp, xp.where(finite, s, unbounded), dtype)


