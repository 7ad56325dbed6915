"""Records of `spec/scaling.py`: sample, reference and error inputs and ulp budgets.

The chapter has no tier D (its formulas are counts) and one tier-R equation, the Chinchilla
loss; the other equations are products of counts, checked in tier P against the figures of
the sources.
"""

from __future__ import annotations

from conformance.records import ErrorCase, Sample, budget, errors, references, samples
from conformance.records import sample_array as _a
from spec.scaling import (
    _ZERO_STAGES,
    chinchilla_loss,
    compute_optimal_allocation,
    kv_cache_bytes,
    matmul_flops,
    training_flops,
    training_memory_bytes,
)


@samples(chinchilla_loss)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e8, 1e9, 7e10], dtype, device), _a(xp, [2e9, 2e10, 1.4e12], dtype,
                                                             device)), {},
               "three model sizes at 20 tokens per parameter"),
        Sample((_a(xp, [7e10], dtype, device), 1.4e12), {"alpha": 0.3392, "beta": 0.2849},
               "Chinchilla, unrounded exponents"),
    ]


@references(chinchilla_loss)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 1e15], dtype, device), _a(xp, [1.0, 1e15], dtype, device)), {},
               "N = D = 1 and far beyond"),
    ]


def _count_errors(xp, dtype, device, n_args: int, kwargs=None):
    kwargs = kwargs or {}
    rest = (1e9,) * (n_args - 1)
    return [
        ErrorCase((-5.0, *rest), kwargs, ValueError, "must be a positive finite number",
                  "negative count"),
        ErrorCase((_a(xp, [1e9, 0.0], dtype, device), *rest), kwargs, ValueError,
                  "must be positive; it holds values", "zero in an array"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device), *rest), kwargs, TypeError,
                  "must have a real floating dtype", "integer array"),
        ErrorCase(("7e10", *rest), kwargs, TypeError, "must be a positive number or a floating",
                  "a string"),
        ErrorCase((True, *rest), kwargs, TypeError, "must be a positive number or a floating",
                  "a bool"),
    ]


@errors(chinchilla_loss)
def _(xp, dtype, device):
    return [
        *_count_errors(xp, dtype, device, 2),
        ErrorCase((7e10, 1.4e12), {"alpha": 0.0}, ValueError, "alpha must be a positive",
                  "zero alpha"),
    ]


@samples(training_flops)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [7e10, 1.75e11], dtype, device), _a(xp, [1.4e12, 3e11], dtype, device)),
               {}, "Chinchilla and GPT-3"),
        Sample((_a(xp, [1e9], dtype, device), 2e10), {}, "array and number"),
    ]


@errors(training_flops)
def _(xp, dtype, device):
    return _count_errors(xp, dtype, device, 2)


@samples(compute_optimal_allocation)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e21, 5.76e23, 1e25], dtype, device),), {}, "three budgets"),
        Sample((5.76e23,), {"alpha": 0.3392, "beta": 0.2849}, "Gopher budget, unrounded"),
    ]


@errors(compute_optimal_allocation)
def _(xp, dtype, device):
    return [
        *_count_errors(xp, dtype, device, 1),
        ErrorCase((1e21,), {"beta": -0.28}, ValueError, "beta must be a positive",
                  "negative beta"),
    ]


@samples(matmul_flops)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [2048.0], dtype, device), 4096, 4096), {}, "002's transformer example"),
        Sample((_a(xp, [128.0, 1024.0], dtype, device), 768, 3072), {}, "two batch sizes"),
    ]


@errors(matmul_flops)
def _(xp, dtype, device):
    return _count_errors(xp, dtype, device, 3)


@samples(kv_cache_bytes)
def _(xp, dtype, device):
    return [
        Sample((80, _a(xp, [131072.0], dtype, device), 8192), {}, "70 B model at 128 K tokens"),
        Sample((32, _a(xp, [2048.0, 8192.0, 32768.0], dtype, device), 4096),
               {"batch": 8}, "context sweep, batch 8"),
    ]


@errors(kv_cache_bytes)
def _(xp, dtype, device):
    return [
        *_count_errors(xp, dtype, device, 3),
        ErrorCase((80, 4096, 8192), {"batch": 0}, ValueError,
                  "batch must be a positive finite number", "zero batch"),
    ]


@samples(training_memory_bytes)
def _(xp, dtype, device):
    psi = _a(xp, [7.5e9], dtype, device)
    return [
        Sample((psi,), {"num_devices": 64, "zero_stage": stage}, f"7.5 B, 64 devices, stage "
               f"{stage}") for stage in _ZERO_STAGES
    ] + [Sample((_a(xp, [7e10], dtype, device),), {}, "70 B, one device"),
         Sample((_a(xp, [7e10], dtype, device),), {"components": ("weights",)},
                "70 B, 16-bit weights alone")]


@errors(training_memory_bytes)
def _(xp, dtype, device):
    return [
        *_count_errors(xp, dtype, device, 1),
        ErrorCase((7.5e9,), {"zero_stage": 4}, ValueError, "zero_stage must be one of",
                  "stage 4"),
        ErrorCase((7.5e9,), {"num_devices": 0}, ValueError, "num_devices must be ≥ 1",
                  "no devices"),
        ErrorCase((7.5e9,), {"num_devices": 2.0}, TypeError, "num_devices must be an integer",
                  "float devices"),
        ErrorCase((7.5e9,), {"components": ("activations",)}, ValueError,
                  "components must be a non-empty subset", "unknown component"),
    ]


# --------------------------------------------------------------------------------- tier R
#: the two powers (≤ 1 ulp in float64, ≤ 2 in float32 libraries), their quotients (½), the
#: two sums (½ each); in float32 the constants are rounded too (½ each) and x**α with α
#: rounded to float32 carries |ln x|·α·2⁻²⁴ relative, ≤ 6 ulp at the records' x ≤ 1e15:
#: ≤ 3 ulp in float64 (budget 4), ≤ 11 in float32 (budget 12).
budget({"chinchilla_loss": {"float32": 12, "float64": 4}})
