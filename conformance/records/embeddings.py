"""Records of `spec/embeddings.py`: sample, reference and error inputs, derivative cases and
ulp budgets.
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
from spec.embeddings import (
    analogy,
    cosine_top_k,
    embedding,
    one_hot,
    rope,
    sinusoidal_positions,
    tied_logits,
)


def _i(xp, values, device, dtype=None):
    """Integer ids (int64 unless `dtype` names another width: uint8, int16, uint16, …)."""
    return xp.asarray(values, dtype=xp.int64 if dtype is None else getattr(xp, dtype),
                      device=device)


_TABLE = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-2.0, 3.0, 1.0], [0.0, 1.0, -1.5]]


@samples(embedding)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, _TABLE, dtype, device), _i(xp, [2, 0, 2, 3], device)), {},
               "a sequence of 4 tokens, one repeated"),
        Sample((_a(xp, _TABLE, dtype, device), _i(xp, [[1, 3], [0, 0]], device)), {},
               "a batch of 2 sequences"),
        Sample((_a(xp, _TABLE, dtype, device), _i(xp, 1, device)), {}, "one token (0-d)"),
    ]


@references(embedding)
def _(xp, dtype, device):
    big = 1e300 if dtype == xp.float64 else 3e38
    return [
        Sample((_a(xp, [[big, -big], [math.inf, math.nan]], dtype, device),
                _i(xp, [1, 0], device)), {}, "huge, infinite and NaN rows are copied",
               proves=("exact",)),
        Sample((_a(xp, _TABLE, dtype, device), _i(xp, [[0, 1]], device)[:0, :]), {},
               "no tokens"),
        *(Sample((_a(xp, _TABLE, dtype, device), _i(xp, [3, 0, 2], device, width)), {},
                 f"{width} token ids") for width in ("uint8", "int8", "int16", "uint16")),
    ]


@errors(embedding)
def _(xp, dtype, device):
    table = _a(xp, _TABLE, dtype, device)
    return [
        ErrorCase((table, _i(xp, [0, 4], device)), {}, ValueError,
                  r"tokens must be token ids in \[0, 4\)", "token id = V"),
        ErrorCase((table, _i(xp, [-1], device)), {}, ValueError,
                  r"tokens must be token ids in \[0, 4\)", "negative token id"),
        ErrorCase((table, _a(xp, [0.0, 1.0], dtype, device)), {}, TypeError,
                  "tokens must have an integer dtype", "float token ids"),
        ErrorCase((_a(xp, [0.5, 1.0], dtype, device), _i(xp, [0], device)), {}, ValueError,
                  r"table must be a matrix \(V, d\)", "a vector as table"),
        ErrorCase((_i(xp, [[1, 2]], device), _i(xp, [0], device)), {}, TypeError,
                  "table must have a real floating dtype", "integer table"),
        ErrorCase((table, _i(xp, [200, 0], device, "uint8")), {}, ValueError,
                  r"tokens must be token ids in \[0, 4\)", "uint8 token id ≥ V"),
        ErrorCase((table, _i(xp, [0], device)), {"scale_by_sqrt_d": 1}, TypeError,
                  "scale_by_sqrt_d must be True or False", "scale_by_sqrt_d an int"),
    ]


@samples(one_hot)
def _(xp, dtype, device):
    return [
        Sample((_i(xp, [2, 0, 1, 2], device), 3), {}, "four labels, three classes"),
        Sample((_i(xp, [[0, 4], [3, 3]], device), 5), {}, "a 2 × 2 batch of labels"),
        Sample((_i(xp, 1, device), 2), {}, "one label (0-d)"),
    ]


@references(one_hot)
def _(xp, dtype, device):
    return [
        Sample((_i(xp, [0, 49999, 50256], device), 50257), {}, "GPT-2's vocabulary of 50257",
               proves=("exact",)),
        Sample((_i(xp, [0], device)[:0], 4), {}, "no labels"),
        Sample((_i(xp, [0, 0], device), 1), {}, "a single class"),
        Sample((_i(xp, [5, 100], device, "uint8"), 300), {},
               "uint8 labels, 300 classes (more than uint8 holds)"),
        Sample((_i(xp, [3, 0, 299], device, "uint16"), np.int64(300)), {},
               "uint16 labels, num_classes a NumPy integer"),
    ]


@errors(one_hot)
def _(xp, dtype, device):
    y = _i(xp, [0, 2], device)
    return [
        ErrorCase((_i(xp, [0, 3], device), 3), {}, ValueError,
                  r"labels must be class indices in \[0, 3\)", "label = num_classes"),
        ErrorCase((_i(xp, [-1], device), 3), {}, ValueError,
                  r"labels must be class indices in \[0, 3\)", "negative label"),
        ErrorCase((_a(xp, [0.0, 1.0], dtype, device), 3), {}, TypeError,
                  "labels must have an integer dtype", "float labels"),
        ErrorCase((y, 0), {}, ValueError, r"num_classes must be an integer ≥ 1",
                  "zero classes"),
        ErrorCase((y, 3.0), {}, TypeError, "num_classes must be an integer", "float classes"),
        ErrorCase((y, 3), {"dtype": "float32"}, TypeError,
                  "dtype must be a real floating or integral or bool dtype", "dtype as a string"),
    ]


@samples(tied_logits)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -0.5, 2.0], dtype, device), _a(xp, _TABLE, dtype, device)), {},
               "one hidden state"),
        Sample((_a(xp, [[[1.0, 0.0, 0.5], [0.25, -1.0, 2.0]]], dtype, device),
                _a(xp, _TABLE, dtype, device)), {}, "batch × sequence"),
    ]


@references(tied_logits)
def _(xp, dtype, device):
    h = [1.0, -1.0, 0.5, 0.25, -2.0, 3.0, 0.125, 1.5]
    e = [[1.0, 1.0, 2.0, 4.0, -1.0, 2.0, 8.0, 0.0],
         [1e-3, -1e-3, 0.0, 2.0, 0.5, -0.25, 1.0, 0.5],
         [3.0, 1.0, -6.0, 4.0, 1.0, 1.0, 0.0, 0.0]]
    return [
        Sample((_a(xp, [h], dtype, device), _a(xp, e, dtype, device)), {},
               "d = 8, one logit cancels to 0"),
    ]


@errors(tied_logits)
def _(xp, dtype, device):
    table = _a(xp, _TABLE, dtype, device)
    return [
        ErrorCase((_a(xp, [1.0, 2.0], dtype, device), table), {}, ValueError,
                  r"h must have the table's width d = 3", "h of another width"),
        ErrorCase((_a(xp, [1.0, 2.0, 3.0], dtype, device), _a(xp, [1.0, 2.0, 3.0], dtype,
                                                               device)), {}, ValueError,
                  r"table must be a matrix \(V, d\)", "a vector as table"),
        ErrorCase((_i(xp, [1, 2, 3], device), table), {}, TypeError,
                  "h must have a real floating dtype", "integer h"),
        ErrorCase((_a(xp, 1.0, dtype, device), table), {}, ValueError,
                  "h must have at least 1 dimension", "0-d h"),
    ]


@samples(sinusoidal_positions)
def _(xp, dtype, device):
    opts = {"xp": xp, "dtype": dtype, "device": device}
    return [
        Sample((6, 8), opts, "6 positions, d = 8"),
        Sample((4, 2), {**opts, "base": 100.0}, "d = 2, base 100"),
    ]


@references(sinusoidal_positions)
def _(xp, dtype, device):
    opts = {"xp": xp, "dtype": dtype, "device": device}
    return [
        Sample((_i(xp, 3, device), 4), opts, "num_positions as a 0-d integer array"),
        Sample((0, 4), opts, "no positions"),
        Sample((2049, 6), opts, "positions to 2048, angles to 2048 rad"),
    ]


@errors(sinusoidal_positions)
def _(xp, dtype, device):
    opts = {"xp": xp, "dtype": dtype, "device": device}
    return [
        ErrorCase((4, 8), {**opts, "xp": "numpy"}, TypeError, "xp must be an array namespace",
                  "a string as xp"),
        ErrorCase((4, 7), opts, ValueError, "dim must be even", "odd dim"),
        ErrorCase((-1, 8), opts, ValueError, "num_positions must be an integer ≥ 0",
                  "negative num_positions"),
        ErrorCase((4, 8), {**opts, "base": 0.0}, ValueError, "base must be a positive",
                  "zero base"),
        ErrorCase((4.0, 8), opts, TypeError, "num_positions must be an integer",
                  "float num_positions"),
        ErrorCase((4, 8), {**opts, "dtype": xp.int64}, TypeError,
                  "dtype must be a real floating dtype", "integer dtype"),
    ]


_Q = [[1.0, -0.5, 2.0, 0.25], [0.5, 1.5, -1.0, 3.0], [-2.0, 0.0, 1.0, 1.0]]


@samples(rope)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, _Q, dtype, device), _i(xp, [0, 1, 2], device)), {},
               "3 tokens, d = 4, interleaved"),
        Sample((_a(xp, _Q, dtype, device), _i(xp, [0, 1, 2], device)), {"layout": "half"},
               "3 tokens, d = 4, half"),
        Sample((_a(xp, [_Q, [[1.0, 2.0, 3.0, 4.0]] * 3], dtype, device),
                _a(xp, [5.0, 0.5, 7.25], dtype, device)), {"base": 100.0},
               "a batch of 2, float positions, base 100"),
        # per-row positions and scaling are proven by tier-P properties on every backend, not
        # here: these samples are also what conformance.check runs a user's kernel on, and a
        # kernel without those options would be failed for lacking them
    ]


@references(rope)
def _(xp, dtype, device):
    row = [1.0, -2.0, 0.5, 3.0, -1.0, 0.25, 2.0, -0.75]
    return [
        Sample((_a(xp, [row] * 3, dtype, device), _i(xp, [1000, 4096, 10000], device)), {},
               "positions to 1e4, interleaved"),
        Sample((_a(xp, [row] * 3, dtype, device), _i(xp, [1000, 4096, 10000], device)),
               {"layout": "half"}, "positions to 1e4, half"),
        Sample((_a(xp, [[1e30, -1e30], [1e-30, 3e-30]], dtype, device),
                _i(xp, [3, 7], device)), {}, "huge and tiny features"),
        Sample((_a(xp, [row[:4]] * 2, dtype, device), _i(xp, [1001, 70000], device)), {},
               "positions 1001 and 70000 (not integers of float16 or bfloat16)",
               proves=("angles_in_working_precision",)),
        Sample((_a(xp, [row[:4]] * 3, dtype, device), _i(xp, [0, 255, 65535], device, "uint16")),
               {"layout": "half"}, "uint16 positions"),
    ]


@errors(rope)
def _(xp, dtype, device):
    x = _a(xp, _Q, dtype, device)
    p = _i(xp, [0, 1, 2], device)
    return [
        ErrorCase((_a(xp, [[1.0, 2.0, 3.0]], dtype, device), _i(xp, [0], device)), {},
                  ValueError, "x must have an even feature dimension", "odd d"),
        ErrorCase((x, _i(xp, [0, 1], device)), {}, ValueError,
                  r"positions must have shape \(seq_len,\) = \(3,\)", "positions too short"),
        ErrorCase((x, _i(xp, [[0, 1, 2]], device)), {}, ValueError,
                  r"positions must have shape \(seq_len,\)", "2-d positions"),
        ErrorCase((x, p), {"layout": "neox"}, ValueError, "layout must be one of",
                  "unknown layout"),
        ErrorCase((_a(xp, [1.0, 2.0], dtype, device), _i(xp, [0], device)), {}, ValueError,
                  "x must have at least 2 dimension", "1-d x"),
        ErrorCase((_i(xp, [[1, 2]], device), _i(xp, [0], device)), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, xp.asarray([True, False, True], device=device)), {}, TypeError,
                  "positions must have an integer or real floating dtype", "bool positions"),
        ErrorCase((x, p), {"base": -1.0}, ValueError, "base must be a positive",
                  "negative base"),
        ErrorCase((x, p), {"scaling": {"rope_type": "yarn", "factor": 4.0}}, ValueError,
                  r"scaling\['rope_type'\] must be one of 'default', 'linear', 'llama3'",
                  "an unsupported scaling"),
        ErrorCase((x, p), {"scaling": {"rope_type": "llama3", "factor": 8.0}}, ValueError,
                  r"scaling of rope_type 'llama3' needs the keys \['low_freq_factor'",
                  "llama3 scaling without its factors"),
        ErrorCase((x, p), {"scaling": {"rope_type": "linear", "factor": 2.0, "beta": 1.0}},
                  ValueError, r"unknown: \['beta'\]", "an unknown scaling key"),
        ErrorCase((x, p), {"scaling": {"rope_type": "linear", "factor": 0.0}}, ValueError,
                  r"scaling\['factor'\] must be a positive", "a zero factor"),
        ErrorCase((x, p), {"scaling": 2.0}, TypeError, "scaling must be None or a mapping",
                  "a number for the scaling"),
    ]


_VECTORS = [
    [0.9, 0.8, 0.1, 0.0],
    [0.9, 0.1, 0.8, 0.0],
    [0.1, 0.9, 0.1, 0.0],
    [0.1, 0.1, 0.9, 0.0],
    [0.0, 0.1, 0.1, 0.9],
    [0.7, 0.8, 0.1, 0.1],
    [0.7, 0.1, 0.8, 0.1],
]


_KING, _QUEEN, _MAN, _WOMAN = 0, 1, 2, 3


@samples(analogy)
def _(xp, dtype, device):
    e = _a(xp, _VECTORS, dtype, device)
    return [
        Sample((e, _i(xp, _MAN, device), _i(xp, _KING, device), _i(xp, _WOMAN, device)), {},
               "king − man + woman → queen"),
        Sample((e, _i(xp, [_WOMAN, _KING], device), _i(xp, [_QUEEN, _MAN], device),
                _i(xp, [_MAN, _QUEEN], device)), {}, "a batch of two analogies"),
    ]


@references(analogy)
def _(xp, dtype, device):
    e = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 1.0]]
    return [
        Sample((_a(xp, e, dtype, device), _i(xp, 0, device), _i(xp, 3, device),
                _i(xp, 2, device)), {}, "tied rows: the lower index wins", proves=("exact",)),
        Sample((_a(xp, [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype, device),
                _i(xp, 0, device), _i(xp, 1, device), _i(xp, 1, device)), {},
               "zero target: the first row not excluded"),
        Sample((_a(xp, _VECTORS, dtype, device), _i(xp, _MAN, device, "uint8"),
                _i(xp, _KING, device, "uint8"), _i(xp, _WOMAN, device, "uint8")), {},
               "uint8 ids"),
    ]


@errors(analogy)
def _(xp, dtype, device):
    e = _a(xp, _VECTORS, dtype, device)
    i0, i1 = _i(xp, 0, device), _i(xp, 1, device)
    return [
        ErrorCase((e, _i(xp, 7, device), i0, i1), {}, ValueError,
                  r"a must be token ids in \[0, 7\)", "a out of range"),
        ErrorCase((e, i0, i1, _i(xp, [1, 2], device)), {}, ValueError,
                  "a and c must have the same shape", "c of another shape"),
        ErrorCase((e, i0, _a(xp, 1.0, dtype, device), i1), {}, TypeError,
                  "b must have an integer dtype", "float b"),
        ErrorCase((e[:3, :], i0, i1, i1), {}, ValueError,
                  "table must have at least 4 rows", "only 3 rows"),
    ]


_DOCS = [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.5, 0.5], [0.5, 0.5, 0.7]]


@samples(cosine_top_k)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 0.25, 0.0], dtype, device), _a(xp, _DOCS, dtype, device)),
               {"k": 3}, "one query, top 3 of 5"),
        Sample((_a(xp, [[0.0, 1.0, 0.1], [0.2, 0.2, 1.0]], dtype, device),
                _a(xp, _DOCS, dtype, device)), {"k": 5}, "two queries, full ranking"),
    ]


@references(cosine_top_k)
def _(xp, dtype, device):
    # rows (1, 1), (2, 2), (4, 4): scalings by powers of two, so their cosines tie exactly in
    # floating point too (a factor 5 could round the two norms differently)
    return [
        Sample((_a(xp, [1.0, 1.0], dtype, device),
                _a(xp, [[0.0, 1.0], [2.0, 2.0], [1.0, 0.0], [1.0, 1.0], [4.0, 4.0]], dtype,
                   device)), {"k": 4}, "equal similarities: increasing index",
               proves=("exact",)),
        Sample((_a(xp, [1e30, 2e30], dtype, device),
                _a(xp, [[1e-30, 0.0], [1e30, 1e30], [0.0, 0.0]], dtype, device)), {"k": 3},
               "huge and tiny vectors, a zero document"),
    ]


@errors(cosine_top_k)
def _(xp, dtype, device):
    q = _a(xp, [1.0, 0.0, 0.0], dtype, device)
    docs = _a(xp, _DOCS, dtype, device)
    return [
        ErrorCase((q, docs), {"k": 6}, ValueError,
                  "k must be at most the number of documents N = 5", "k > N"),
        ErrorCase((q, docs), {"k": 0}, ValueError, "k must be an integer ≥ 1", "k = 0"),
        ErrorCase((q, docs), {"k": 2.0}, TypeError, "k must be an integer", "float k"),
        ErrorCase((_a(xp, [1.0, 0.0], dtype, device), docs), {"k": 1}, ValueError,
                  "query must have the documents' width d = 3", "query of another width"),
        ErrorCase((q, q), {"k": 1}, ValueError, r"docs must be a matrix \(N, d\)",
                  "a vector as docs"),
        ErrorCase((q, _a(xp, _DOCS, xp.float32 if dtype == xp.float64 else xp.float64,
                         device)), {"k": 1}, TypeError,
                  "query and docs must have the same dtype", "docs of another dtype"),
    ]


# --------------------------------------------------------------------------------- tier D
def _uniform_args(*specs):
    """`make_args(seed)` drawing every argument from one generator seeded with `seed`, in
    order: ("float", shape, bound) is uniform(−bound, bound), ("int", shape, high) uniform
    integers in [0, high)."""
    def make_args(seed: int) -> list:
        rng = np.random.default_rng(seed)
        return [rng.integers(0, high, shape) if kind == "int" else rng.uniform(-high, high, shape)
                for kind, shape, high in specs]

    return make_args


_ROPE_ARGS = _uniform_args(("float", (2, 3, 4), 2.0), ("float", (3,), 20.0))
_TIED_ARGS = _uniform_args(("float", (2, 3), 2.0), ("float", (4, 3), 2.0))

derivative(
    DerivativeCase("embedding", embedding,
                   _uniform_args(("float", (4, 3), 2.0), ("int", (2, 3), 4)), label="arg0"),
    # the gradient with respect to h: the table's identity is proven by the case below
    DerivativeCase("tied_logits", tied_logits, _TIED_ARGS, label="arg0", identities=()),
    DerivativeCase("tied_logits", tied_logits, _TIED_ARGS, argnum=1, label="arg1",
                   # ∂⟨c, hEᵀ⟩/∂E = cᵀh
                   closed=lambda xp, a, c: xp.matmul(xp.matrix_transpose(c), a[0])),
    DerivativeCase("rope", rope, _ROPE_ARGS, kwargs={"layout": "half", "base": 100.0},
                   label="arg0"),
    DerivativeCase("rope", rope, _ROPE_ARGS, argnum=1, kwargs={"layout": "half", "base": 100.0},
                   label="arg1"),
    # with integer positions (held fixed) the derivative with respect to x is Rᵀg
    *(DerivativeCase("rope", rope, _uniform_args(("float", (3, 6), 2.0), ("int", (3,), 50)),
                     kwargs={"layout": layout}, seeds=(3,), label=f"integer positions, {layout}")
      for layout in ("interleaved", "half")),
)


# --------------------------------------------------------------------------------- tier R
# The largest error against mpmath (conformance/oracles_embeddings.py), in units in the last
# place at the scale (floor F) the oracle chooses for each equation, from the operation
# counts (u = unit roundoff; at the floor F one ulp is at least u·F):
#
# * `embedding`, `one_hot`: copies and indicators, so exact: 0 ulps.
# * `analogy`, `cosine_top_k`: indices, judged on inputs whose margins (or exact ties of
#   bitwise-equal rows) survive rounding, so exact: 0.
# * `tied_logits`: a d-term dot product in any order is off by at most γ_d·Σⱼ|hⱼEᵥⱼ|. At
#   that floor this is d ulps, with d ≤ 8 in the records: 8.
# * `sinusoidal_positions`: θᵢ is rounded once to the dtype (≤ u relative), and the angle
#   p·θᵢ once more, so the angle is off by ≤ 2u·|pθᵢ|. sin/cos add ≤ 2 ulps of a value ≤ 1,
#   which is ≤ 4u. At F = max(1, |pθᵢ|) that is ≤ 6 ulps. This is the absolute condition of
#   sin at a float angle; an angle of 1e4 in float32 is only known to ~1e-3. (Checked by a
#   tier-P property with the backend's namespace: the equation takes no array.)
# * `rope`: cos and sin are each off by ≤ 6u·G with G = max(1, |pθᵢ|). The two products and
#   the sum add 2u·(|x_a| + |x_b|). At F = (|x_a| + |x_b|)·G that is ≤ 8 ulps.
#
# In float16 and bfloat16 (computed in float32, rounded once) the budgets are derived from
# float32's (records.ulp_budget), except where the result is exact in every dtype: a copy
# (embedding) and an index (analogy, cosine_top_k) are off by 0 ulps there too.
budget({
    "embedding": {"float32": 0, "float64": 0, "float16": 0, "bfloat16": 0},
    "one_hot": {"float32": 0, "float64": 0},
    "analogy": {"float32": 0, "float64": 0, "float16": 0, "bfloat16": 0},
    "cosine_top_k": {"float32": 0, "float64": 0, "float16": 0, "bfloat16": 0},
    "tied_logits": {"float32": 8, "float64": 8},
    "sinusoidal_positions": {"float32": 6, "float64": 6},
    "rope": {"float32": 8, "float64": 8},
})
