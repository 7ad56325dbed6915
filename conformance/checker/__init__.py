"""The checker: hold any implementation of an equation to the spec, and write its report card.

    >>> from conformance.check import check
    >>> card = check(my_softmax, "softmax", backend="torch", dtypes=("float32", "bfloat16"))
    >>> card.passed, card.diagnoses()
    >>> open("card.md", "w").write(card.to_markdown())

or, from the shell, ``python -m conformance --candidate softmax=mypkg.kernels:softmax
--backend torch --report out/``. The candidate is called exactly as the suite calls the spec
(`spec.softmax(z, axis=-1)`, with the backend's arrays); a kernel with another signature is
wrapped first (`conformance.adapters`). The card has five sections:

1. **Named variant.** Where the spec names several forms of the equation (`Variant` in its
   record: GELU erf/tanh, ε inside/outside the root, …), which one the candidate computes, from
   inputs on which they differ (`checker.inputs.distinguishing` plus the records' inputs). The
   candidate is checked as the spec's default form unless `variant=` names another (or
   `options=` gives the options of the form it computes); computing another form is a
   failure that names the form.
2. **Properties.** Every tier-P property of the equation that can run on a candidate
   (`conformance/properties/`, not the `spec_only` ones), in each dtype it applies to, under
   Hypothesis with this module's own runner: held, or broken with the smallest falsifying
   example Hypothesis found (each draw by its label). A property that needs an option the
   candidate lacks is "n/a".
3. **Accuracy.** The error against mpmath (tier R's oracles) in ulps of each dtype, over the
   records' sample and reference inputs and a few wide rows, beside the spec's own error in the
   same dtype, judged as FlashAttention judges its kernels: candidate ≤ k × spec + floor
   (k per equation, default 2; floor one ulp: `checker.inputs`).
4. **Gradients.** Where the backend has autograd and it sees through the candidate: the
   candidate's vector-Jacobian product against the spec's closed form (the records' tier-D
   cases) or, without one, against autograd through the spec.
5. **Edge semantics.** The records' reference inputs and the family's edge inputs (fully
   masked rows, −∞ and ±1e4 logits, empty batches, NaN propagation): the candidate's result
   against the spec's, NaN for NaN, ∞ for ∞, and finite values within (k + 1) budgets.

`check` returns a :class:`Card` (`.passed`, `.diagnoses()`, `.to_json()`, `.to_markdown()`).
"""

from __future__ import annotations

import importlib
import inspect
import time
import warnings
from collections.abc import Callable

import numpy as np

import backends
import spec

from .. import properties as props
from ..adapters import Unsupported
from .card import Card
from .sections import _Run

__all__ = ["PROFILES", "SECTIONS", "Card", "check", "load_candidate"]

#: Hypothesis examples per drawn property, by profile ("quick" is the tests' own)
PROFILES = {"quick": 6, "ci": 20, "dev": 60, "thorough": 10_000}
SECTIONS = ("variant", "properties", "accuracy", "gradients", "edges")


def load_candidate(target: str) -> Callable:
    """'package.module:function' (or 'package.module:object.attribute') → the callable."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"a candidate is 'package.module:function', got {target!r}")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


def check(candidate, equation: str, *, backend="numpy", dtypes=None, profile: str = "ci",
          variant: str | None = None, options: dict | None = None,
          sections=SECTIONS, identities=None, name: str | None = None) -> Card:
    """The report card of `candidate` as an implementation of `equation`.

    candidate: a callable with the spec's signature (or 'package.module:function').
    backend: a backend id ('numpy', 'torch', 'jax', …) or a backend object; its arrays are
        what the candidate receives.
    dtypes: the float dtypes to check (default: every float dtype the backend has).
    profile: Hypothesis examples per property: 'quick' (6, and the first counter-example is
        reported as found, not shrunk: the tests' profile), 'ci' (20, the default), 'dev'
        (60), 'thorough' (10,000); derandomised except 'dev' and 'thorough'.
    variant: the name of the spec's named form the candidate claims to compute (default: the
        spec's default form). options: the spec's options of that form, for a form the spec
        has not named; the candidate is then only called in that form.
    sections: which sections to run (default all of SECTIONS).
    identities: run only the properties proving one of these identity keys (default all).
    name: the candidate's name on the card (default: its module and name).
    """
    start = time.perf_counter()
    catalogue = spec.catalogue()
    if equation not in catalogue:
        raise KeyError(f"{equation!r} is not a registered equation")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; sections: {', '.join(SECTIONS)}")
    rec = catalogue[equation]
    fn = load_candidate(candidate) if isinstance(candidate, str) else candidate
    label = name or (candidate if isinstance(candidate, str) else _label(fn))
    bk = backends.get(backend) if isinstance(backend, str) else backend
    _register_bfloat16()
    bk.prepare_for_conformance()
    dtypes = tuple(dtypes) if dtypes is not None else tuple(
        d for d in ("float32", "float64", "float16", "bfloat16") if d in bk.float_dtypes)
    missing = [d for d in dtypes if d not in bk.float_dtypes]
    if missing:
        raise ValueError(f"backend {bk.id} has no {', '.join(missing)}")
    declared = {i.key for i in rec.identities}
    wanted = None if identities is None else set(identities)
    if wanted is not None and wanted - declared:
        raise ValueError(f"{equation} declares no identity {sorted(wanted - declared)}")
    options, expected = _form(rec, variant, options)
    impl = Bound(fn, options, rec.func,
                 implicit={k for v in rec.variants for k in v.options} - set(options))
    run = _Run(equation, rec, bk, fn, impl, options, profile)
    card = Card(equation=equation, candidate=label, backend=bk.id, dtypes=dtypes,
                profile=profile, options=dict(options), versions=bk.versions())
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow and NaN are what the edge cases are about
        _sections(card, run, sections, expected, dtypes, wanted)
    card.seconds = round(time.perf_counter() - start, 2)
    return card


def _sections(card, run, sections, expected, dtypes, identities) -> None:
    equation = card.equation
    if "variant" in sections:
        card.variant = run.variant(expected, dtypes)
    if "properties" in sections:
        for p in props.for_equation(equation):
            if p.spec_only or (identities is not None and not identities & set(p.identities)):
                continue
            for dtype in dtypes:
                if p.applies_to(dtype):
                    card.properties.append(run.property(p, dtype))
    if "accuracy" in sections:
        card.accuracy = [run.accuracy(dtype) for dtype in dtypes]
    if "gradients" in sections:
        card.gradients = run.gradients(dtypes)
    if "edges" in sections:
        card.edges = [e for dtype in dtypes for e in run.edges(dtype)]


def _register_bfloat16() -> None:
    """Import ml_dtypes, which registers bfloat16 with NumPy by name (properties and records
    write `np.asarray(..., dtype="bfloat16")`); nothing else may have imported it yet."""
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        pass


def _label(fn) -> str:
    kernel = getattr(fn, "kernel", fn)
    module = getattr(kernel, "__module__", None) or ""
    qual = getattr(kernel, "__qualname__", None) or getattr(kernel, "__name__", repr(kernel))
    return f"{module}.{qual}" if module else qual


def _form(rec, variant, options) -> tuple[dict, str | None]:
    """The options the candidate is checked with, and the name of that form."""
    if variant is not None:
        names = {v.name: v for v in rec.variants}
        if variant not in names:
            declared = ", ".join(names) or "none"
            raise ValueError(f"{rec.name} names no variant {variant!r} (declared: {declared}); "
                             "give the form's options with options={...} instead")
        if options and dict(options) != dict(names[variant].options):
            raise ValueError(f"variant {variant!r} has options {names[variant].options}, "
                             f"not {options}")
        return dict(names[variant].options), variant
    options = dict(options or {})
    sig = inspect.signature(rec.func).parameters
    bad = [k for k in options if k not in sig]
    if bad:
        raise ValueError(f"{rec.name} has no option {', '.join(map(repr, bad))}")
    for v in rec.variants:
        if _options_equal(v.options, options, rec.func):
            return options, v.name
    return options, (None if options else next((v.name for v in rec.variants if v.default),
                                               None))


def _options_equal(a: dict, b: dict, func) -> bool:
    """Whether two option sets select the same form (a missing option is its default)."""
    defaults = _defaults(func)
    keys = set(a) | set(b)
    return all(a.get(k, defaults.get(k)) == b.get(k, defaults.get(k)) for k in keys)


def _defaults(func) -> dict:
    return {k: p.default for k, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _accepts(fn) -> set[str] | None:
    """The keyword names `fn` takes (None: any, through **kwargs, or no signature known)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}


class Bound:
    """The candidate as the checker calls it: with the spec's signature, in one form.

    The options of the form the candidate is checked as (`options`) are bound: a call asking
    for another value of one of them (explicitly, or by leaving it at the spec's default)
    raises `Unsupported`, and the option is passed on only if the candidate takes it. The
    other options that select a named variant (`implicit`) pass through to a candidate that
    takes them; one that does not is held to the spec's default form of them."""

    def __init__(self, fn: Callable, options: dict, spec_func: Callable, implicit=()):
        self.fn = fn
        self.defaults = _defaults(spec_func)
        self.accepts = _accepts(fn)
        self.options = dict(options)
        for key in implicit:
            if not self._takes(key) and key in self.defaults:
                self.options[key] = self.defaults[key]
        self.__name__ = getattr(fn, "__name__", "candidate")

    def _takes(self, key) -> bool:
        return self.accepts is None or key in self.accepts

    def __call__(self, *args, **kwargs):
        for key, want in self.options.items():
            got = kwargs.pop(key, self.defaults.get(key))
            if not _same(got, want):
                raise Unsupported(f"the candidate is checked as {key}={want!r}; this call "
                                  f"asks for {key}={got!r}")
            if self._takes(key):
                kwargs[key] = want
        return self.fn(*args, **kwargs)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b

