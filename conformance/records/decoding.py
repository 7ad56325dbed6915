"""Records of `spec/decoding.py`: its sample, reference and error inputs, derivative case
and ulp budgets.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.records import (
    DerivativeCase,
    ErrorCase,
    Sample,
    budget,
    derivative,
    errors,
    references,
    samples,
)
from conformance.records import sample_array as _a
from spec import _validate as v
from spec.decoding import (
    beam_search,
    greedy,
    sample,
    temperature_scale,
    top_k_filter,
    top_p_filter,
)


def _dtype_name(xp, dtype) -> str:
    return "float32" if dtype == xp.float32 else "float64"


@samples(temperature_scale)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [2.0, 1.0, -0.5], dtype, device),), {"temperature": 0.7}, "T=0.7"),
        Sample((_a(xp, [[1.0, 3.0], [0.0, -2.0]], dtype, device),), {"temperature": 1.5},
               "batch, T=1.5"),
        Sample((_a(xp, [2.0, 1.0, -0.5], dtype, device),), {"temperature": np.float32(0.5)},
               "a NumPy scalar temperature"),
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
        ErrorCase((z,), {"temperature": True}, TypeError, "temperature must be a real number",
                  "a bool temperature"),
    ]


@samples(top_k_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.1, 0.4, 0.2, 0.3], dtype, device),), {"k": 2}, "k=2 of 4"),
        Sample((_a(xp, [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], dtype, device),), {"k": 2},
               "batch with ties at the threshold"),
        Sample((_a(xp, [0.3, 0.3, 0.4], dtype, device),), {"k": 3}, "k = V"),
        Sample((_a(xp, [0.1, 0.4, 0.2, 0.3], dtype, device),), {"k": np.int64(2)},
               "a NumPy integer k"),
        Sample((_a(xp, [[0.4, 0.3, 0.3], [0.2, 0.2, 0.6]], dtype, device),),
               {"k": 2, "ties": "all"}, "variant all: every token tied with the k-th kept"),
    ]


@references(top_k_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.25, 0.25, 0.25, 0.25], dtype, device),), {"k": 1},
               "all tied: the first index wins"),
        Sample((_a(xp, [1.0, 0.0, 0.0], dtype, device),), {"k": 2}, "zeros kept as zeros"),
        # tiny and unnormalised: 1, 3 and 2 times float16's smallest subnormal step 2⁻²⁴,
        # exact in every dtype (normal numbers from bfloat16 up)
        Sample((_a(xp, [2.0**-24, 3 * 2.0**-24, 2 * 2.0**-24], dtype, device),), {"k": 2},
               "tiny unnormalised"),
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
        ErrorCase((p,), {"k": True}, TypeError, "k must be an integer, got a bool", "bool k"),
        ErrorCase((p,), {"k": 2, "ties": "last"}, ValueError, "ties must be one of",
                  "an unknown tie rule"),
    ]


@samples(top_p_filter)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, 0.3, 0.2], dtype, device),), {"p": 0.6},
               "reaches p with two tokens (≤ p would keep one)"),
        Sample((_a(xp, [[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], dtype, device),), {"p": 0.85},
               "batch, unsorted"),
        Sample((_a(xp, [0.2, 0.3, 0.5], dtype, device),), {"p": 1.0}, "p = 1"),
        Sample((_a(xp, [0.5, 0.3, 0.2], dtype, device),), {"p": np.float32(0.9)},
               "a NumPy scalar p (inside (0, 1])"),
        Sample((_a(xp, [[0.5, 0.3, 0.2], [0.9, 0.06, 0.04]], dtype, device),),
               {"p": 0.6, "crossing": "drop"},
               "variant drop: the crossing token dropped, the top token always kept"),
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
        ErrorCase((q,), {"p": True}, TypeError, "p must be a real number, got bool", "bool p"),
        ErrorCase((q,), {"p": 0.5, "crossing": "round"}, ValueError,
                  "crossing must be one of", "an unknown crossing rule"),
    ]


@samples(sample)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.1, 0.2, 0.7], dtype, device), _a(xp, [0.05, 0.2, 0.5, 0.95], dtype,
                                                              device)), {},
               "four draws from one distribution"),
        Sample((_a(xp, [[0.5, 0.5], [0.9, 0.1]], dtype, device), _a(xp, [0.75, 0.3], dtype,
                                                                     device)), {},
               "one draw per row"),
        Sample((_a(xp, [0.1, 0.2, 0.7], dtype, device),
                _a(xp, [0.05, 0.2999, 0.3001, 0.95], xp.float64, device)), {},
               "float64 uniforms: compared in the wider dtype"),
    ]


@references(sample)
def _(xp, dtype, device):
    # each decided by the exact inverse CDF (an index is exact or wrong: budget 0)
    return [
        Sample((_a(xp, [0.25, 0.25, 0.5], dtype, device), _a(xp, [0.0, 0.25, 0.5], dtype,
                                                              device)), {},
               "u on a CDF step goes to the next token", proves=("exact_inverse_cdf",)),
        # 0.99, not closer to 1: bfloat16 rounds 0.999 to 1, which is no uniform in [0, 1)
        Sample((_a(xp, [0.0, 1.0, 0.0], dtype, device), _a(xp, [0.0, 0.99], dtype, device)), {},
               "zero-probability tokens never drawn", proves=("exact_inverse_cdf",)),
        Sample((_a(xp, [2.0, 6.0], dtype, device), _a(xp, [0.2, 0.3], dtype, device)), {},
               "unnormalised: u scaled by the total", proves=("exact_inverse_cdf",)),
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
        Sample((model, _a(xp, [2], xp.uint8, device)), {"beam_width": np.int64(2), "steps": 2},
               "a uint8 start and a NumPy integer width: int64 sequences"),
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


# --------------------------------------------------------------------------------- tier D
derivative(
    DerivativeCase("temperature_scale", temperature_scale,
                   lambda seed: [np.random.default_rng(seed).normal(0, 2, (2, 3))],
                   kwargs={"temperature": 0.7}, closed=lambda xp, a, c: c / 0.7),
)


# --------------------------------------------------------------------------------- tier R
# Against the exact oracles of oracles_decoding.py, in ulps of the result (each value judged
# relative to itself: z/T and P_i/Σ_kept P of non-negative terms never cancel, and an index
# must be exact). Budgets from the operation counts:
# - temperature_scale: T is rounded to the dtype (≤ ½ ulp) and one division (≤ ½ ulp); a
#   library may multiply by a rounded 1/T instead (one more ½ ulp): ≤ 1.5, budget 2;
# - top_k_filter, top_p_filter: the records' rows have ≤ 4 entries, so the kept mass is ≤ 3
#   roundings (≤ 1.5 ulp relative, non-negative terms) and the quotient one more: ≤ 2,
#   budget 4; which tokens are kept is decided away from rounding ties in every record;
# - sample: an index is exact or wrong, budget 0.
# - float16 and bfloat16 (computed in float32, rounded once) derive theirs from float32's
#   (tolerances.low_precision_budget), except sample: an index is exact or wrong in every
#   dtype, budget 0 (the derived 1 ulp would accept an index one off once the index reaches
#   float16's or bfloat16's unit spacing, at 2048 and 256).
budget({
    "temperature_scale": {"float32": 2, "float64": 2},
    "top_k_filter": {"float32": 4, "float64": 4},
    "top_p_filter": {"float32": 4, "float64": 4},
    "sample": {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 0},
})
