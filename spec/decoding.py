r"""Language modelling and decoding: from next-token probabilities to generated tokens.

Temperature, top-k and nucleus (top-p) filtering, inverse-CDF sampling with supplied uniforms,
greedy decoding and beam search. Everything works along the last axis (the vocabulary), with
any number of leading batch dimensions.

Portability notes. Filtering needs the k-th largest value of each row: it is read from
``xp.sort`` (2022.12) and ties at the threshold are resolved with ``xp.cumulative_sum``
(2023.12), so no ``take_along_axis`` (2024.12) is needed — Dask has none
(https://github.com/dask/dask/issues/3663). Beam search uses ``xp.argsort(..., stable=True)``
and ``xp.take``. Ties are always broken towards the lower index, on every backend.

Sources: 002 §10.1–§10.2 (temperature, top-k, nucleus, beam search), 001 (temperature),
004 (next-token prediction).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ErrorCase, Identity, Sample, equation, errors, references, samples
from ._registry import sample_array as _a

__all__ = [
    "beam_search",
    "greedy",
    "sample",
    "temperature_scale",
    "top_k_filter",
    "top_p_filter",
]



def _dtype_name(xp, dtype) -> str:
    return "float32" if dtype == xp.float32 else "float64"


def _count(value, name: str, low: int, high: int | None = None) -> int:
    """A Python integer in [low, high] (bools refused), else TypeError/ValueError."""
    value = v.integer_option(value, name)
    if high is None and value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _broadcast_shape(a: tuple, b: tuple, message: str) -> tuple:
    """The broadcast shape of two shapes, or ValueError(message + both shapes)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True)):
        raise ValueError(f"{message}: got {a} and {b}")
    return tuple(y if x == 1 else x for x, y in zip(a, b, strict=True))


def _probabilities(probs, name: str = "probs"):
    """Checks for a batch of distributions over the last axis (non-negative, some mass)."""
    xp = v.namespace(**{name: probs})
    v.floating(xp, probs, name)
    v.min_ndim(probs, 1, name)
    v.nonempty_axis(probs, probs.ndim - 1, name)
    v.nonnegative(xp, probs, name)
    v.check_values(xp, probs, lambda p: xp.all(p == 0, axis=-1),
                   f"{name} has a row with zero total mass: it is no distribution")
    return xp


def _nan_rows(xp, x, out):
    """`out` with every row (last axis) of `x` that holds a NaN replaced by NaN."""
    bad = xp.any(xp.isnan(x), axis=-1, keepdims=True)
    return xp.where(bad, xp.full_like(out, math.nan), out)


def _keep_largest(xp, probs, threshold, count):
    """Mask of the `count` largest entries per row, given the count-th largest value.

    Every entry above `threshold` is kept; of the entries equal to it, the first ones by index
    fill the remaining places (the running count of ties is a cumulative sum), so exactly
    `count` entries are kept and the lower index wins a tie, on every backend.
    """
    above = probs > threshold
    n_above = xp.sum(xp.astype(above, xp.int64), axis=-1, keepdims=True)
    tie = probs == threshold
    tie_rank = xp.cumulative_sum(xp.astype(tie, xp.int64), axis=-1)  # 1, 2, … among the ties
    return above | (tie & (tie_rank <= count - n_above))


def _renormalised(xp, probs, keep):
    kept = xp.where(keep, probs, xp.zeros_like(probs))
    return _nan_rows(xp, probs, kept / xp.sum(kept, axis=-1, keepdims=True))


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    latex=r"\tilde z = z / T",
    seeds=("002 §10.2.1", "001"),
    oracle="exact",
    identities=(
        Identity("is_division", "the code is z/T elementwise", "S"),
        Identity("unit_temperature", "T = 1 is the identity", "SP"),
        Identity("cold_limit", "softmax(z/T) → one-hot at argmax z as T → 0", "P"),
        Identity("gradient", "∂(z/T)/∂z = 1/T", "D"),
        Identity("accuracy", "within 2 ulp of the exact quotient (T rounded to the dtype)", "R"),
    ),
)
def temperature_scale(logits, /, *, temperature):
    r"""Divide logits by a temperature before the softmax.

    .. math:: \tilde z_i = z_i / T, \qquad P(t_i) = \frac{e^{z_i/T}}{\sum_j e^{z_j/T}}

    T < 1 sharpens the distribution, T > 1 flattens it; T → 0 tends to the one-hot argmax
    (greedy decoding, :func:`greedy`), which is a limit, not a value: T must be a positive
    finite number. Shapes: logits (..., V) → same shape. Source: 002 §10.2.1, 001.
    """
    xp = v.namespace(logits=logits)
    v.floating(xp, logits, "logits")
    temperature = v.positive_number(temperature, "temperature")
    return logits / temperature


@samples(temperature_scale)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [2.0, 1.0, -0.5], dtype, device),), {"temperature": 0.7}, "T=0.7"),
        Sample((_a(xp, [[1.0, 3.0], [0.0, -2.0]], dtype, device),), {"temperature": 1.5},
               "batch, T=1.5"),
    ]


@references(temperature_scale)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e4, -1e4, 0.0], dtype, device),), {"temperature": 1e-3},
               "large logits, cold"),
        Sample((_a(xp, [-math.inf, 1.0], dtype, device),), {"temperature": 2.0},
               "−∞ stays −∞"),
    ]


@errors(temperature_scale)
def _(xp, dtype, device):
    z = _a(xp, [1.0, 2.0], dtype, device)
    return [
        ErrorCase((z,), {"temperature": 0.0}, ValueError, "temperature must be a positive",
                  "zero temperature"),
        ErrorCase((z,), {"temperature": math.inf}, ValueError, "temperature must be a positive",
                  "infinite temperature"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device),), {"temperature": 1.0}, TypeError,
                  "logits must have a real floating dtype", "integer logits"),
        ErrorCase(([1.0, 2.0],), {"temperature": 1.0}, TypeError, "logits must be an array",
                  "a list"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    latex=r"P'(t_i) = \frac{P(t_i)\,[i \in \mathrm{top}_k]}{\sum_{j \in \mathrm{top}_k} P(t_j)}",
    seeds=("002 §10.2.2",),
    tiers="PRXE",
    oracle="exact",
    identities=(
        Identity("support_size", "exactly k entries are non-zero (ties: lower index wins)", "P"),
        Identity("sums_to_one", "each row sums to 1", "P"),
        Identity("identity_at_vocab", "k = V returns the (renormalised) input", "P"),
        Identity("keeps_largest", "every kept entry ≥ every dropped entry", "P"),
        Identity("accuracy", "within its ulp budget of the exact renormalisation", "R"),
    ),
)
def top_k_filter(probs, /, *, k):
    r"""Top-k filtering: keep the k most probable tokens of each row and renormalise.

    .. math:: P'(t_i) = \frac{P(t_i)}{\sum_{j \in \mathrm{top}_k} P(t_j)}
              \ \text{ for } i \in \mathrm{top}_k, \qquad P'(t_i) = 0 \text{ otherwise}

    Ties: the support has exactly k entries; among tokens of equal probability at the
    threshold, the lower index is kept (deterministic on every backend). k = V keeps
    everything (the input divided by its row sum). A row holding NaN gives NaN; a row with no
    mass at all is an error. The input need not sum to 1: the kept mass is the denominator.

    Shapes: probs (..., V) → same shape; 1 ≤ k ≤ V. Source: 002 §10.2.2.
    """
    xp = _probabilities(probs)
    k = _count(k, "k", 1, probs.shape[-1])
    threshold = xp.sort(probs, axis=-1, descending=True)[..., k - 1:k]
    return _renormalised(xp, probs, _keep_largest(xp, probs, threshold, k))


@samples(top_k_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.1, 0.4, 0.2, 0.3], dtype, device),), {"k": 2}, "k=2 of 4"),
        Sample((_a(xp, [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], dtype, device),), {"k": 2},
               "batch with ties at the threshold"),
        Sample((_a(xp, [0.3, 0.3, 0.4], dtype, device),), {"k": 3}, "k = V"),
    ]


@references(top_k_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.25, 0.25, 0.25, 0.25], dtype, device),), {"k": 1},
               "all tied: the first index wins"),
        Sample((_a(xp, [1.0, 0.0, 0.0], dtype, device),), {"k": 2}, "zeros kept as zeros"),
        Sample((_a(xp, [1e-30, 3e-30, 2e-30], dtype, device),), {"k": 2}, "tiny unnormalised"),
    ]


def _filter_errors(xp, dtype, device, option: str, bad_value, message: str):
    p = _a(xp, [0.5, 0.3, 0.2], dtype, device)
    good = {"k": 2, "p": 0.9}[option]
    return [
        ErrorCase((p,), {option: bad_value}, ValueError, message, f"{option} out of range"),
        ErrorCase((_a(xp, [0.5, -0.1, 0.6], dtype, device),), {option: good}, ValueError,
                  "probs must be non-negative", "negative probability"),
        ErrorCase((_a(xp, [1, 0, 0], xp.int64, device),), {option: good}, TypeError,
                  "probs must have a real floating dtype", "integer probabilities"),
        ErrorCase((_a(xp, 0.5, dtype, device),), {option: good}, ValueError,
                  "at least 1 dimension", "0-d probs"),
        ErrorCase((_a(xp, [[0.0, 0.0], [0.5, 0.5]], dtype, device),), {option: good},
                  ValueError, "zero total mass", "a row without mass"),
    ]


@errors(top_k_filter)
def _(xp, dtype, device):
    p = _a(xp, [0.5, 0.3, 0.2], dtype, device)
    return [
        *_filter_errors(xp, dtype, device, "k", 4, r"k must be in \[1, 3\]"),
        ErrorCase((p,), {"k": 0}, ValueError, r"k must be in \[1, 3\]", "k = 0"),
        ErrorCase((p,), {"k": 1.5}, TypeError, "k must be an integer", "float k"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    latex=r"V_p = \text{the smallest prefix of the tokens sorted by } P \text{ with }"
    r" \sum_{v \in V_p} P(v) \ge p,\quad P'(t_i) = \frac{P(t_i)}{\sum_{v \in V_p} P(v)}",
    seeds=("002 §10.2.3",),
    tiers="PRXE",
    oracle="exact",
    errata=(
        "002 §10.2.3 writes V_p = {t : Σ_{v sorted} P(v) ≤ p}: the largest prefix whose mass "
        "stays at or below p, which can be empty (P(top) > p) and never reaches p. Holtzman et "
        "al. (2020) take the smallest prefix whose mass reaches p (≥ p).",
        "002 §10.2.3 renormalises by p (P'(tᵢ) = P(tᵢ)/p); the kept tokens' own mass Σ_{V_p} P "
        "is the normaliser, else P' does not sum to 1.",
    ),
    identities=(
        Identity("reaches_p", "the kept mass is ≥ p (not ≤ p as 002 writes)", "P"),
        Identity("minimal", "dropping the least probable kept token falls below p", "P"),
        Identity("sums_to_one", "each row sums to 1 (divided by the kept mass, not by p)", "P"),
        Identity("identity_at_one", "p = 1 returns the (renormalised) input", "P"),
        Identity("accuracy", "within its ulp budget of the exact filter", "R"),
    ),
)
def top_p_filter(probs, /, *, p):
    r"""Nucleus (top-p) filtering: keep the smallest set of most probable tokens reaching mass p.

    .. math:: V_p = \operatorname*{arg\,min}_{|S|}\Bigl\{S = \text{top-}|S| \text{ tokens}:
              \sum_{v \in S} P(v) \ge p\Bigr\}, \qquad
              P'(t_i) = \frac{P(t_i)}{\sum_{v \in V_p} P(v)} \ (i \in V_p)

    A token is kept when the probability mass of the tokens sorted before it is < p·Σ P (so
    the input need not sum to 1); the most probable token is always kept. Ties at the edge of
    the nucleus keep the lower index, as in :func:`top_k_filter`. p = 1 keeps every token (a
    rounded running sum could otherwise reach the total before the last tiny tokens). The
    sorted cumulative mass is a floating-point sum, so p equal to a partial sum (to within its
    rounding) may keep one token more or less than exact arithmetic would.

    Erratum: 002 §10.2.3 writes V_p = {t : Σ_{v sorted} P(v) ≤ p} and P'(tᵢ) = P(tᵢ)/p.
    The "≤ p" set does not reach p (it is empty when the top token alone exceeds p); dividing by
    p does not give a distribution. This follows Holtzman et al. (2020): ≥ p, divided by the
    kept mass.

    Shapes: probs (..., V) → same shape; 0 < p ≤ 1. Source: 002 §10.2.3.
    """
    xp = _probabilities(probs)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"p must be a number in (0, 1], got {p!r}")
    if p == 1:
        return _renormalised(xp, probs, xp.ones_like(probs) > 0)
    ordered = xp.sort(probs, axis=-1, descending=True)
    running = xp.cumulative_sum(ordered, axis=-1)
    before = xp.concat([xp.zeros_like(running[..., :1]), running[..., :-1]], axis=-1)
    in_nucleus = before < p * running[..., -1:]  # a prefix of the sorted tokens
    count = xp.sum(xp.astype(in_nucleus, xp.int64), axis=-1, keepdims=True)
    threshold = xp.min(xp.where(in_nucleus, ordered, xp.full_like(ordered, math.inf)),
                       axis=-1, keepdims=True)
    return _renormalised(xp, probs, _keep_largest(xp, probs, threshold, count))


@samples(top_p_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, 0.3, 0.2], dtype, device),), {"p": 0.6},
               "reaches p with two tokens (≤ p would keep one)"),
        Sample((_a(xp, [[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], dtype, device),), {"p": 0.85},
               "batch, unsorted"),
        Sample((_a(xp, [0.2, 0.3, 0.5], dtype, device),), {"p": 1.0}, "p = 1"),
    ]


@references(top_p_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.9, 0.06, 0.04], dtype, device),), {"p": 0.5},
               "top token alone exceeds p (≤ p would keep nothing)"),
        Sample((_a(xp, [0.3, 0.3, 0.3, 0.1], dtype, device),), {"p": 0.5},
               "tie at the edge: lower index kept"),
        Sample((_a(xp, [2.0, 1.0, 1.0], dtype, device),), {"p": 0.55}, "unnormalised input"),
    ]


@errors(top_p_filter)
def _(xp, dtype, device):
    q = _a(xp, [0.5, 0.3, 0.2], dtype, device)
    return [
        *_filter_errors(xp, dtype, device, "p", 0.0, r"p must be a number in \(0, 1\]"),
        ErrorCase((q,), {"p": 1.5}, ValueError, r"p must be a number in \(0, 1\]", "p > 1"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    latex=r"\operatorname{sample}(P, u) = \min\Bigl\{i : \sum_{j \le i} P_j > u \sum_j P_j\Bigr\}",
    seeds=("002 §10.2",),
    tiers="PRXE",
    oracle="exact",
    identities=(
        Identity("frequencies", "over many uniforms the frequencies match probs (χ² test)", "P"),
        Identity("never_zero", "a zero-probability token is never drawn", "P"),
        Identity("exact_inverse_cdf", "the index is the exact inverse CDF of u", "R"),
    ),
)
def sample(probs, u, /):
    r"""Draw a token by inverting the cumulative distribution at supplied uniforms u.

    .. math:: i(u) = \min\Bigl\{i : F_i > u\,F_{V-1}\Bigr\}, \qquad F_i = \sum_{j \le i} P_j

    The randomness is the argument u ∈ [0, 1) (one uniform per draw), so the draw is
    deterministic and the same on every backend: the first index whose cumulative sum exceeds
    u (scaled by the row's total mass, so the input need not sum to 1). A u landing exactly on
    a step of the CDF goes to the next token; zero-probability tokens are never drawn (if
    rounding makes u·total reach the last step, the last token with positive mass is drawn).

    Shapes: probs (..., V) and u broadcastable against probs' batch shape (...) → integer
    indices of the broadcast shape; for example probs (V,) with u (n,) gives n draws from one
    distribution. Source: 002 §10.2 (sampling from P(tᵢ)).
    """
    xp = v.namespace(probs=probs, u=u)
    _probabilities(probs)
    v.floating(xp, u, "u")
    v.same_dtype(probs, u, "probs and u")
    _broadcast_shape(tuple(probs.shape[:-1]), tuple(u.shape),
                     "u must be broadcastable against probs' batch shape")
    v.check_values(xp, probs, xp.isnan, "probs holds NaN: no token can be drawn")
    v.check_values(xp, u, lambda a: (a < 0) | (a >= 1) | xp.isnan(a),
                   "u must hold uniforms in [0, 1); some are outside")
    cdf = xp.cumulative_sum(probs, axis=-1)
    total = cdf[..., -1:]
    target = u[..., None] * total
    first_above = xp.sum(xp.astype(cdf <= target, xp.int64), axis=-1)
    last_positive = xp.sum(xp.astype(cdf < total, xp.int64), axis=-1)
    return xp.minimum(first_above, last_positive)


@samples(sample)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.1, 0.2, 0.7], dtype, device), _a(xp, [0.05, 0.2, 0.5, 0.95], dtype,
                                                              device)), {},
               "four draws from one distribution"),
        Sample((_a(xp, [[0.5, 0.5], [0.9, 0.1]], dtype, device), _a(xp, [0.75, 0.3], dtype,
                                                                     device)), {},
               "one draw per row"),
    ]


@references(sample)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.25, 0.25, 0.5], dtype, device), _a(xp, [0.0, 0.25, 0.5], dtype,
                                                              device)), {},
               "u on a CDF step goes to the next token"),
        Sample((_a(xp, [0.0, 1.0, 0.0], dtype, device), _a(xp, [0.0, 0.999], dtype, device)), {},
               "zero-probability tokens never drawn"),
        Sample((_a(xp, [2.0, 6.0], dtype, device), _a(xp, [0.2, 0.3], dtype, device)), {},
               "unnormalised: u scaled by the total"),
    ]


@errors(sample)
def _(xp, dtype, device):
    p = _a(xp, [0.2, 0.8], dtype, device)
    return [
        ErrorCase((p, _a(xp, [1.0], dtype, device)), {}, ValueError, r"uniforms in \[0, 1\)",
                  "u = 1"),
        ErrorCase((p, _a(xp, [-0.1], dtype, device)), {}, ValueError, r"uniforms in \[0, 1\)",
                  "negative u"),
        ErrorCase((_a(xp, [[0.2, 0.8]] * 2, dtype, device), _a(xp, [0.1, 0.2, 0.3], dtype,
                                                               device)), {},
                  ValueError, "u must be broadcastable", "u of the wrong shape"),
        ErrorCase((p, _a(xp, [0, 1], xp.int64, device)), {}, TypeError,
                  "u must have a real floating dtype", "integer u"),
        ErrorCase((_a(xp, [math.nan, 0.5], dtype, device), _a(xp, [0.1], dtype, device)), {},
                  ValueError, "probs holds NaN", "NaN probability"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    latex=r"\operatorname{greedy}(z) = \operatorname*{arg\,max}_i z_i",
    seeds=("002 §10.2.1",),
    tiers="PXE",
    identities=(
        Identity("cold_sampling", "equals sample(softmax(z/T), u) for every u as T → 0", "P"),
        Identity("first_of_ties", "ties go to the lowest index", "P"),
    ),
)
def greedy(logits, /):
    r"""Greedy decoding: the index of the largest logit of each row.

    .. math:: \operatorname{greedy}(z) = \operatorname*{arg\,max}_i z_i
              = \lim_{T \to 0} \operatorname{sample}\bigl(\operatorname{softmax}(z/T), u\bigr)

    Ties go to the lowest index (the standard's ``argmax`` returns the first occurrence).
    A NaN logit is an error (no index would be right). Shapes: logits (..., V) → integer
    indices (...). Source: 002 §10.2.1 ("T = 0 reduces to argmax").
    """
    xp = v.namespace(logits=logits)
    v.floating(xp, logits, "logits")
    v.min_ndim(logits, 1, "logits")
    v.nonempty_axis(logits, logits.ndim - 1, "logits")
    v.check_values(xp, logits, xp.isnan, "logits hold NaN: no index is the largest")
    return xp.argmax(logits, axis=-1)


@samples(greedy)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.1, 2.0, -1.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[1.0, 1.0, 0.0], [-math.inf, -5.0, -6.0]], dtype, device),), {},
               "tie and −∞"),
    ]


@errors(greedy)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [1, 2], xp.int64, device),), {}, TypeError,
                  "logits must have a real floating dtype", "integer logits"),
        ErrorCase((_a(xp, 1.0, dtype, device),), {}, ValueError, "at least 1 dimension",
                  "0-d logits"),
        ErrorCase((_a(xp, [[1.0]], dtype, device)[:, :0],), {}, ValueError,
                  "length 0 along axis", "empty vocabulary"),
        ErrorCase((_a(xp, [1.0, math.nan], dtype, device),), {}, ValueError, "logits hold NaN",
                  "NaN logit"),
    ]


# --------------------------------------------------------------------------------------------
def _check_log_probs(xp, start, logp, n_beams: int):
    try:
        v.namespace(start=start, log_probs=logp)
    except TypeError:
        raise TypeError("log_prob_fn must return an array of the library of start") from None
    if not xp.isdtype(logp.dtype, "real floating"):
        raise TypeError(f"log_prob_fn must return a real floating array, got {logp.dtype}")
    if logp.ndim != 2 or logp.shape[0] != n_beams or logp.shape[1] < 1:
        raise ValueError(f"log_prob_fn must return shape (beams, V) = ({n_beams}, V ≥ 1) for "
                         f"{n_beams} sequence(s), got {tuple(logp.shape)}")
    v.check_values(xp, logp, xp.isnan, "log_prob_fn returned NaN log-probabilities")


@equation(
    chapter="decoding",
    latex=r"\operatorname{score}(x_{1:t}) = \frac1t \sum_{i=1}^{t} \log P(x_i \mid x_{<i})",
    seeds=("002 §10.2.4",),
    tiers="PXE",
    identities=(
        Identity("width_one_is_greedy", "beam_width = 1 equals repeated greedy", "P"),
        Identity("exhaustive", "with beam_width ≥ V^(steps−1) it finds the exact best sequences "
                 "that enumerating all V^steps continuations finds", "P"),
        Identity("beats_greedy", "on a model where greedy is suboptimal, a wider beam finds the "
                 "better sequence", "P"),
    ),
)
def beam_search(log_prob_fn, start, /, *, beam_width, steps, return_scores=False):
    r"""Beam search: extend the best partial sequences by every token, keep the best beams.

    .. math:: \operatorname{score}(x_{1:t}) = \frac{1}{t}\sum_{i=1}^{t}\log P(x_i \mid x_{<i})

    ``log_prob_fn(seqs)`` takes a batch of sequences, integer (beams, length), and returns
    their next-token log-probabilities (beams, V). The search starts from the one sequence
    ``start`` (length ≥ 0) and runs ``steps`` steps; at each step every beam is extended by
    every token and the ``beam_width`` best of the beams × V candidates are kept.

    What "best" means: the score is the mean log-probability of the generated tokens (t counts
    the generated tokens, not the prompt). Every candidate at a step has the same length t, so
    ranking by the mean is ranking by the sum Σ log P, that is by the joint probability of the
    continuation: without an end-of-sequence token, length normalisation changes the reported
    score, never the ranking. The result is the best sequence of exactly ``steps`` new tokens
    among those the beam kept; it is the exact maximum over all V^steps continuations when
    beam_width ≥ V^(steps−1) (nothing is ever pruned), and beam_width = 1 is greedy decoding.
    Ties in score go to the lower (beam rank, token) pair, so the result is deterministic.

    Returns the kept sequences, best first, integer (min(beam_width, V^steps), len(start) +
    steps), and with ``return_scores=True`` also their scores (beams,) in the dtype of the
    log-probabilities. Source: 002 §10.2.4.
    """
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be callable, got {type(log_prob_fn).__name__}")
    xp = v.namespace(start=start)
    v.integer(xp, start, "start")
    if start.ndim != 1:
        raise ValueError(f"start must be 1-D (one token sequence), got shape {tuple(start.shape)}")
    beam_width = _count(beam_width, "beam_width", 1)
    steps = _count(steps, "steps", 1)
    seqs = xp.reshape(start, (1, start.shape[0]))
    scores = None
    for _ in range(steps):
        logp = log_prob_fn(seqs)
        _check_log_probs(xp, start, logp, seqs.shape[0])
        vocab = logp.shape[1]
        total = logp if scores is None else scores[:, None] + logp
        flat = xp.reshape(total, (-1,))
        keep = min(beam_width, flat.shape[0])
        best = xp.argsort(-flat, stable=True)[:keep]  # stable: lower (beam, token) first
        parent, token = best // vocab, best % vocab
        seqs = xp.concat([xp.take(seqs, parent, axis=0),
                          xp.reshape(xp.astype(token, seqs.dtype), (-1, 1))], axis=1)
        scores = xp.take(flat, best)
    return (seqs, scores / steps) if return_scores else seqs


def _bigram_model(table, dtype_name: str):
    """log_prob_fn of a bigram model: log table[last token], built in the caller's library."""

    def log_probs(seqs):
        xp = v.namespace(seqs=seqs)
        t = xp.asarray(table, dtype=getattr(xp, dtype_name), device=v.device(seqs))
        return xp.log(xp.take(t, seqs[:, -1], axis=0))

    return log_probs


#: next-token probabilities of a 3-token bigram model on which greedy is not optimal:
#: from 0, greedy takes 1 (0.5) then 0.4; the best pair is 2 (0.4) then 0.9.
_BIGRAM = [[0.1, 0.5, 0.4], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]]


@samples(beam_search)
def _(xp, dtype, device):
    model = _bigram_model(_BIGRAM, _dtype_name(xp, dtype))
    start = _a(xp, [0], xp.int64, device)
    return [
        Sample((model, start), {"beam_width": 2, "steps": 2}, "beam 2 beats greedy"),
        Sample((model, start), {"beam_width": 1, "steps": 3}, "beam 1 is greedy"),
        Sample((model, start), {"beam_width": 9, "steps": 2, "return_scores": False},
               "exhaustive width"),
    ]


@errors(beam_search)
def _(xp, dtype, device):
    model = _bigram_model(_BIGRAM, _dtype_name(xp, dtype))
    start = _a(xp, [0], xp.int64, device)

    def wrong_shape(seqs):
        return model(seqs)[:, :, None]

    return [
        ErrorCase(("not a function", start), {"beam_width": 2, "steps": 1}, TypeError,
                  "log_prob_fn must be callable", "not callable"),
        ErrorCase((model, _a(xp, [0.0], dtype, device)), {"beam_width": 2, "steps": 1},
                  TypeError, "start must have an integer dtype", "float start"),
        ErrorCase((model, _a(xp, [[0]], xp.int64, device)), {"beam_width": 2, "steps": 1},
                  ValueError, "start must be 1-D", "2-D start"),
        ErrorCase((model, start), {"beam_width": 0, "steps": 1}, ValueError,
                  "beam_width must be an integer ≥ 1", "beam_width 0"),
        ErrorCase((model, start), {"beam_width": 2, "steps": 0}, ValueError,
                  "steps must be an integer ≥ 1", "no steps"),
        ErrorCase((wrong_shape, start), {"beam_width": 2, "steps": 1}, ValueError,
                  r"log_prob_fn must return shape \(beams, V\)", "model of the wrong shape"),
    ]

