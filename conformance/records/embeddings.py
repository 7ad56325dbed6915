"""Records of `spec/embeddings.py`: its sample, reference and error inputs.
"""

from __future__ import annotations

import math

from conformance.records import ErrorCase, Sample, errors, references, samples
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


def _i(xp, values, device):
    return xp.asarray(values, dtype=xp.int64, device=device)


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
                _i(xp, [1, 0], device)), {}, "huge, infinite and NaN rows are copied"),
        Sample((_a(xp, _TABLE, dtype, device), _i(xp, [[0, 1]], device)[:0, :]), {},
               "no tokens"),
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
        Sample((_i(xp, [0, 49999, 50256], device), 50257), {}, "GPT-2's vocabulary of 50257"),
        Sample((_i(xp, [0], device)[:0], 4), {}, "no labels"),
        Sample((_i(xp, [0, 0], device), 1), {}, "a single class"),
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
        ErrorCase((4, 8), {}, TypeError, "pass xp=, the array namespace", "no namespace"),
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
                _i(xp, 2, device)), {}, "tied rows: the lower index wins"),
        Sample((_a(xp, [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype, device),
                _i(xp, 0, device), _i(xp, 1, device), _i(xp, 1, device)), {},
               "zero target: the first row not excluded"),
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
                   device)), {"k": 4}, "equal similarities: increasing index"),
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
