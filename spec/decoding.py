r"""Language modelling and decoding: from next-token probabilities to generated tokens.

Temperature, top-k and nucleus (top-p) filtering, inverse-CDF sampling with supplied uniforms,
greedy decoding and beam search. Everything works along the last axis (the vocabulary), with
any number of leading batch dimensions.

Portability notes. Filtering needs the k-th largest value of each row: it is read from
``xp.sort`` (2022.12) and ties at the threshold are resolved with ``xp.cumulative_sum``
(2023.12), so no ``take_along_axis`` (2024.12) is needed — Dask has none
(https://github.com/dask/dask/issues/3663). Beam search uses ``xp.argsort(..., stable=True)``
and ``xp.take``. Ties are always broken towards the lower index, on every backend.

Dtypes: float16 and bfloat16 are computed in float32 (the kept mass, the cumulative sums, the
beam scores) and returned rounded once; integer results (token indices, sequences) are int64
whatever the inputs' widths.

Sources: 002 §10.1–§10.2 (temperature, top-k, nucleus, beam search), 001 (temperature),
004 (next-token prediction).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ALL_FLOATS, Identity, Variant, equation

__all__ = [
    "beam_search",
    "greedy",
    "sample",
    "temperature_scale",
    "top_k_filter",
    "top_p_filter",
]


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
    total = xp.sum(kept, axis=-1, keepdims=True)
    # a row keeps no mass only when it holds NaN (the checks refuse rows without mass): it
    # becomes NaN below, so its denominator is set to 1 rather than dividing 0 by 0
    total = xp.where(total == 0, xp.ones_like(total), total)
    return _nan_rows(xp, probs, kept / total)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    seeds=("002 §10.2.1", "001"),
    oracle="exact",
    identities=(
        Identity("is_division", "the code is z/T elementwise", "S"),
        Identity("unit_temperature", "T = 1 is the identity", "SP"),
        Identity("cold_limit", "softmax(z/T) → one-hot at argmax z as T → 0", "P"),
        Identity("gradient", "∂(z/T)/∂z = 1/T", "D"),
        Identity("accuracy", "within 2 ulp of the exact quotient (T rounded to the dtype)", "R"),
    ),
    dtypes=ALL_FLOATS,
)
def temperature_scale(logits, /, *, temperature):
    r"""Divide logits by a temperature before the softmax.

    .. math:: \tilde z_i = z_i / T, \qquad P(t_i) = \frac{e^{z_i/T}}{\sum_j e^{z_j/T}}

    T < 1 sharpens the distribution, T > 1 flattens it; T → 0 tends to the one-hot argmax
    (greedy decoding, :func:`greedy`), which is a limit, not a value: T must be a positive
    finite number (any real number type). Shapes: logits (..., V) → same shape. Dtypes: float16
    and bfloat16 divided in float32 and rounded once (a quotient past the dtype's range is ±∞,
    as the rounded true value is). Source: 002 §10.2.1, 001.
    """
    xp = v.namespace(logits=logits)
    v.floating(xp, logits, "logits")
    temperature = v.positive_number(temperature, "temperature")
    logits, dtype = v.widen(xp, logits)
    return v.narrow(xp, logits / temperature, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    seeds=("002 §10.2.2",),
    tiers="PRXE",
    oracle="exact",
    identities=(
        Identity("support_size", "exactly k entries are non-zero (ties: lower index wins)", "P"),
        Identity("sums_to_one", "each row sums to 1", "P"),
        Identity("identity_at_vocab", "k = V returns the (renormalised) input", "P"),
        Identity("keeps_largest", "every kept entry ≥ every dropped entry", "P"),
        Identity("nan_rows", "a row holding NaN gives NaN; the other rows are unaffected", "P"),
        Identity("tie_variants", "ties='all' keeps every token tied with the k-th largest, as "
                 "Hugging Face's TopKLogitsWarper; it differs from the default exactly when the "
                 "k-th and (k+1)-th largest are equal", "P"),
        Identity("accuracy", "within its ulp budget of the exact renormalisation", "R"),
    ),
    dtypes=ALL_FLOATS,
    variants=(
        Variant("first", {"ties": "first"},
                "the spec; filters built on the index set of torch.topk or jax.lax.top_k "
                "(exactly k); llama.cpp's top-k (sorts, keeps the first k)",
                "a tie at the k-th largest probability ([0.4, 0.3, 0.3], k = 2): exactly k "
                "tokens, the lower index kept", default=True),
        Variant("all", {"ties": "all"},
                "Hugging Face transformers' TopKLogitsWarper (removes scores < the k-th "
                "largest)",
                "a tie at the k-th largest probability ([0.4, 0.3, 0.3], k = 2): every tied "
                "token kept, more than k"),
    ),
)
def top_k_filter(probs, /, *, k, ties="first"):
    r"""Top-k filtering: keep the k most probable tokens of each row and renormalise.

    .. math:: P'(t_i) = \frac{P(t_i)}{\sum_{j \in \mathrm{top}_k} P(t_j)}
              \ \text{ for } i \in \mathrm{top}_k, \qquad P'(t_i) = 0 \text{ otherwise}

    Ties: the support has exactly k entries; among tokens of equal probability at the
    threshold, the lower index is kept (deterministic on every backend). ``ties="all"`` keeps
    every token whose probability equals the k-th largest instead (the support may exceed k).
    k = V keeps everything (the input divided by its row sum). A row holding NaN gives NaN; a
    row with no mass at all is an error. The input need not sum to 1: the kept mass is the
    denominator.

    Shapes: probs (..., V) → same shape; 1 ≤ k ≤ V (any integer type). Dtypes: float16 and
    bfloat16 renormalised in float32 and rounded once. Source: 002 §10.2.2.
    """
    xp = _probabilities(probs)
    k = _count(k, "k", 1, probs.shape[-1])
    v.choice(ties, ("first", "all"), "ties")
    probs, dtype = v.widen(xp, probs)
    threshold = xp.sort(probs, axis=-1, descending=True)[..., k - 1:k]
    keep = probs >= threshold if ties == "all" else _keep_largest(xp, probs, threshold, k)
    return v.narrow(xp, _renormalised(xp, probs, keep), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
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
        Identity("nan_rows", "a row holding NaN gives NaN; the other rows are unaffected", "P"),
        Identity("crossing_variants", "crossing='drop' keeps the largest prefix whose mass stays "
                 "≤ p (the most probable token always); it differs from the default exactly "
                 "when no prefix's mass equals p", "P"),
        Identity("accuracy", "within its ulp budget of the exact filter", "R"),
    ),
    dtypes=ALL_FLOATS,
    variants=(
        Variant("keep", {"crossing": "keep"},
                "the spec; Holtzman et al. (2020); Hugging Face transformers' "
                "TopPLogitsWarper, vLLM, llama.cpp, Meta's Llama sample_top_p (they keep a "
                "token whose preceding mass is < p, or ≤ p in Llama's)",
                "p inside a token's mass ([0.5, 0.3, 0.2], p = 0.6): the token that crosses p "
                "is kept, two tokens of mass 0.8", default=True),
        Variant("drop", {"crossing": "drop"},
                "002 §10.2.3's \"Σ P(v) ≤ p\" set, kept non-empty; samplers that mask "
                "cumsum ≤ p without shifting the mask by one",
                "p inside a token's mass ([0.5, 0.3, 0.2], p = 0.6): the crossing token is "
                "dropped, one token of mass 0.5 (below p)"),
    ),
)
def top_p_filter(probs, /, *, p, crossing="keep"):
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
    kept mass. ``crossing="drop"`` computes the other form the field uses: the largest prefix
    whose mass stays ≤ p·Σ P (the token that crosses p dropped), never empty (the most
    probable token is always kept), divided by its own mass.

    Shapes: probs (..., V) → same shape; 0 < p ≤ 1 (any real number type). Dtypes: float16
    and bfloat16 summed and renormalised in float32, rounded once. Source: 002 §10.2.3.
    """
    xp = _probabilities(probs)
    p = v.real_number(p, "p")
    if not 0 < p <= 1:
        raise ValueError(f"p must be a number in (0, 1], got {p!r}")
    v.choice(crossing, ("keep", "drop"), "crossing")
    probs, dtype = v.widen(xp, probs)
    if p == 1:
        return v.narrow(xp, _renormalised(xp, probs, xp.ones_like(probs) > 0), dtype)
    ordered = xp.sort(probs, axis=-1, descending=True)
    running = xp.cumulative_sum(ordered, axis=-1)
    goal = p * running[..., -1:]
    if crossing == "keep":
        before = xp.concat([xp.zeros_like(running[..., :1]), running[..., :-1]], axis=-1)
        in_nucleus = before < goal  # a prefix of the sorted tokens
    else:
        first = xp.arange(ordered.shape[-1], device=v.device(ordered)) == 0
        in_nucleus = (running <= goal) | first  # a prefix too (running never decreases)
    count = xp.sum(xp.astype(in_nucleus, xp.int64), axis=-1, keepdims=True)
    threshold = xp.min(xp.where(in_nucleus, ordered, xp.full_like(ordered, math.inf)),
                       axis=-1, keepdims=True)
    return v.narrow(xp, _renormalised(xp, probs, _keep_largest(xp, probs, threshold, count)),
                    dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    seeds=("002 §10.2",),
    tiers="PRXE",
    oracle="exact",
    identities=(
        Identity("frequencies", "over many uniforms the frequencies match probs (χ² test)", "P"),
        Identity("never_zero", "a zero-probability token is never drawn", "P"),
        Identity("exact_inverse_cdf", "the index is the exact inverse CDF of u", "R"),
        Identity("uniforms_of_any_dtype", "u of any float dtype is compared with the CDF in the "
                 "wider of the two working precisions: every token of a uniform bfloat16 "
                 "distribution over 1,000 tokens can be drawn", "P"),
    ),
    dtypes=ALL_FLOATS,
)
def sample(probs, u, /):
    r"""Draw a token by inverting the cumulative distribution at supplied uniforms u.

    .. math:: i(u) = \min\Bigl\{i : F_i > u\,F_{V-1}\Bigr\}, \qquad F_i = \sum_{j \le i} P_j

    The randomness is the argument u ∈ [0, 1) (one uniform per draw), so the draw is
    deterministic and the same on every backend: the first index whose cumulative sum exceeds
    u (scaled by the row's total mass, so the input need not sum to 1). A u landing exactly on
    a step of the CDF goes to the next token; zero-probability tokens are never drawn (if
    rounding makes u·total reach the last step, the last token with positive mass is drawn).

    Shapes: probs (..., V) and u broadcastable against probs' batch shape (...) → int64
    indices of the broadcast shape; for example probs (V,) with u (n,) gives n draws from one
    distribution. Dtypes: probs and u may differ (float32 uniforms with bfloat16
    probabilities, say): the CDF is summed, and compared with u, in the wider of their working
    precisions (float16 and bfloat16 count as float32), so u is never rounded to the
    probabilities' dtype. Source: 002 §10.2 (sampling from P(tᵢ)).
    """
    xp = v.namespace(probs=probs, u=u)
    _probabilities(probs)
    v.floating(xp, u, "u")
    _broadcast_shape(tuple(probs.shape[:-1]), tuple(u.shape),
                     "u must be broadcastable against probs' batch shape")
    v.check_values(xp, probs, xp.isnan, "probs holds NaN: no token can be drawn")
    v.check_values(xp, u, lambda a: (a < 0) | (a >= 1) | xp.isnan(a),
                   "u must hold uniforms in [0, 1); some are outside")
    work = xp.result_type(v.working_dtype(xp, probs.dtype), v.working_dtype(xp, u.dtype))
    probs = probs if probs.dtype == work else xp.astype(probs, work)
    u = u if u.dtype == work else xp.astype(u, work)
    cdf = xp.cumulative_sum(probs, axis=-1)
    total = cdf[..., -1:]
    target = u[..., None] * total
    first_above = xp.sum(xp.astype(cdf <= target, xp.int64), axis=-1)
    last_positive = xp.sum(xp.astype(cdf < total, xp.int64), axis=-1)
    return xp.minimum(first_above, last_positive)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="decoding",
    seeds=("002 §10.2.1",),
    tiers="PXE",
    identities=(
        Identity("cold_sampling", "equals sample(softmax(z/T), u) for every u as T → 0", "P"),
        Identity("first_of_ties", "ties go to the lowest index", "P"),
    ),
    dtypes=ALL_FLOATS,
)
def greedy(logits, /):
    r"""Greedy decoding: the index of the largest logit of each row.

    .. math:: \operatorname{greedy}(z) = \operatorname*{arg\,max}_i z_i
              = \lim_{T \to 0} \operatorname{sample}\bigl(\operatorname{softmax}(z/T), u\bigr)

    Ties go to the lowest index (the standard's ``argmax`` returns the first occurrence).
    A NaN logit is an error (no index would be right). Shapes: logits (..., V) → integer
    indices (...). Dtypes: every real floating dtype, float16 and bfloat16 included: argmax
    only compares, so nothing is rounded. Source: 002 §10.2.1 ("T = 0 reduces to argmax").
    """
    xp = v.namespace(logits=logits)
    v.floating(xp, logits, "logits")
    v.min_ndim(logits, 1, "logits")
    v.nonempty_axis(logits, logits.ndim - 1, "logits")
    v.check_values(xp, logits, xp.isnan, "logits hold NaN: no index is the largest")
    return xp.argmax(logits, axis=-1)


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
    seeds=("002 §10.2.4",),
    tiers="PXE",
    identities=(
        Identity("width_one_is_greedy", "beam_width = 1 equals repeated greedy", "P"),
        Identity("exhaustive", "with beam_width ≥ V^(steps−1) it finds the exact best sequences "
                 "that enumerating all V^steps continuations finds", "P"),
        Identity("beats_greedy", "on a model where greedy is suboptimal, a wider beam finds the "
                 "better sequence", "P"),
        Identity("int64_sequences", "a start of any integer width gives int64 sequences: a "
                 "generated token id past the start's range (299 after a uint8 start) is kept, "
                 "never wrapped", "P"),
    ),
    dtypes=ALL_FLOATS,
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

    Returns the kept sequences, best first, int64 (min(beam_width, V^steps), len(start) +
    steps) whatever the integer width of ``start`` (its values widened, never wrapped; the
    sequences given to ``log_prob_fn`` are int64 too), and with ``return_scores=True`` also
    their scores (beams,) in the dtype of the log-probabilities. Dtypes: float16 and bfloat16
    log-probabilities are summed in float32 (the ranking too), the scores rounded once.
    Source: 002 §10.2.4.
    """
    if not callable(log_prob_fn):
        raise TypeError(f"log_prob_fn must be callable, got {type(log_prob_fn).__name__}")
    xp = v.namespace(start=start)
    v.integer(xp, start, "start")
    if start.ndim != 1:
        raise ValueError(f"start must be 1-D (one token sequence), got shape {tuple(start.shape)}")
    beam_width = _count(beam_width, "beam_width", 1)
    steps = _count(steps, "steps", 1)
    start = v.indices(xp, start, "start", what="token ids")
    seqs = xp.reshape(start, (1, start.shape[0]))
    scores = None
    dtype = None
    for _ in range(steps):
        logp = log_prob_fn(seqs)
        _check_log_probs(xp, start, logp, seqs.shape[0])
        logp, dtype = v.widen(xp, logp)
        vocab = logp.shape[1]
        total = logp if scores is None else scores[:, None] + logp
        flat = xp.reshape(total, (-1,))
        keep = min(beam_width, flat.shape[0])
        best = xp.argsort(-flat, stable=True)[:keep]  # stable: lower (beam, token) first
        parent, token = best // vocab, best % vocab
        seqs = xp.concat([xp.take(seqs, parent, axis=0),
                          xp.reshape(xp.astype(token, seqs.dtype), (-1, 1))], axis=1)
        scores = xp.take(flat, best)
    return (seqs, v.narrow(xp, scores / steps, dtype)) if return_scores else seqs


