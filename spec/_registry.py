"""The equation registry: one record per equation (the OpInfo idea).

Each public equation is an ordinary function decorated with `@equation(...)`; the decorator
returns the function unchanged (so compilers and autograd see plain code) and files a record
holding the promise: the chapter, the source articles, errata, the identities to prove and in
which tiers, the dtypes, and known backend limits. The formula is written once, in the
docstring's first `.. math::` block, and read from there.

The evidence (sample, reference and error inputs, derivative cases, ulp budgets, the
frameworks' own kernels) lives with the tests, in `conformance/records/`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

#: the conformance tiers, in report order
TIERS = {
    "S": "symbolic: the spec's own code run on SymPy expressions, identity proven exactly",
    "P": "properties: Hypothesis-drawn inputs on the chosen backend, within per-dtype tolerances",
    "D": "derivatives: against the SymPy derivative, autograd, and float64 central differences",
    "R": "reference accuracy: error in ulps against mpmath at 50 digits, and extreme inputs",
    "X": "cross-backend: the same host inputs give the same outputs on every backend",
    "E": "error inputs: bad input raises the declared exception and message, on every backend",
}

#: chapters in the order of EQUATIONS.md
CHAPTERS = {
    "linalg": "1. Linear algebra",
    "probability": "2. Probability and information",
    "activations": "3. Activations",
    "losses": "4. Losses",
    "layers": "5. Layers and networks",
    "optim": "6. Optimisation",
    "normalization": "7. Normalisation",
    "embeddings": "8. Embeddings and positions",
    "attention": "9. Attention",
    "transformer": "10. Transformer",
    "decoding": "11. Language modelling and decoding",
    "alignment": "12. Alignment and reinforcement learning",
    "diffusion": "13. Generative models",
    "scaling": "14. Scaling and training at scale",
}

#: the five source articles, by the short number every record cites them with ("002 §2.1.1"):
#: the article's own title where it has one, else what it is. The articles are the project's
#: seed material; they are cited, not shipped.
SEEDS = {
    "000": "A tour of the equations: the neuron, the layer, the loss, gradient descent and "
           "backpropagation",
    "001": "From vectors to MNIST: dot products, matrices, activations and a digit classifier",
    "002": "The mathematics of modern AI from first principles (the long form, in numbered "
           "sections)",
    "003": "Foundations of AI: From Vectors to Neural Networks",
    "004": "How AI Really Works Under the Hood: Math, Models, and Machine Learning",
}


@dataclass(frozen=True)
class Identity:
    """A promise the math makes, and the tiers in which the suite proves it."""

    key: str
    statement: str
    tiers: str


@dataclass(frozen=True)
class Variant:
    """A named form of the equation that the field uses, and the options that compute it.

    Where frameworks disagree on a detail that is each "right" somewhere (GELU by erf or by
    tanh; ε inside or outside the root; RMSNorm's w or Gemma's 1 + w), the record names every
    form, the spec computes each one through `options`, and `default` marks the form the spec
    computes without options. `used_by` says who uses it; `differs` says where the forms part
    (the inputs that tell them apart, as docs/errata.md describes them).
    """

    name: str
    options: dict
    used_by: str
    differs: str = ""
    default: bool = False


@dataclass(frozen=True)
class Limit:
    """A documented limit of one backend for one equation (with its upstream link)."""

    backend: str
    reason: str
    link: str
    tiers: str = "SPDRXE"
    #: the note of the one input it concerns ("" = every input)
    note: str = ""
    #: a limit of the backend's compiler (jax.jit): it applies only where the conformance
    #: suite runs the equation compiled (SPEC_COMPILE=1, tiers P and X)
    compiled: bool = False

    def applies(self, backend_id: str, tier: str, note: str, compiled: bool = False) -> bool:
        return (self.backend == backend_id and tier in self.tiers
                and (not self.note or self.note == note) and (compiled or not self.compiled))


def jit_size_limit(note: str, tiers: str) -> Limit:
    """jax.jit's limit for a size given as an integer array (the input `note`): in a trace the
    array has no value, so it cannot become the Python int the equation needs."""
    return Limit("jax", "jax.jit traces arrays as abstract values, so a size given as an "
                 "integer array cannot become the Python int the equation needs",
                 "https://docs.jax.dev/en/latest/errors.html#jax.errors."
                 "TracerIntegerConversionError", tiers=tiers, note=note, compiled=True)


@dataclass
class Equation:
    """The record of one equation."""

    name: str
    func: Callable
    chapter: str
    seeds: tuple[str, ...]
    tiers: str
    identities: tuple[Identity, ...]
    errata: tuple[str, ...] = ()
    oracle: str | None = None
    dtypes: tuple[str, ...] = ("float32", "float64")
    limits: tuple[Limit, ...] = ()
    variants: tuple[Variant, ...] = ()

    @property
    def module(self) -> str:
        return self.func.__module__

    @property
    def signature(self) -> str:
        return f"{self.name}{inspect.signature(self.func)}"

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.func) or "").split("\n", 1)[0]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""

    @property
    def latex(self) -> str:
        """The formula: the docstring's first `.. math::` block (written once, there)."""
        return formula(self.doc)

    def limit(self, backend_id: str, tier: str, note: str = "", *,
              compiled: bool = False) -> Limit | None:
        """The documented limit that excuses this backend/tier/input, if any (`compiled`: the
        equation runs through the backend's compiler, so its limits count too)."""
        return next((x for x in self.limits if x.applies(backend_id, tier, note, compiled)),
                    None)

    def identities_in(self, tier: str) -> tuple[Identity, ...]:
        return tuple(i for i in self.identities if tier in i.tiers)


#: the dtypes an equation is computed in: float16 and bfloat16 widened to float32 inside
#: (spec/_validate.py, `widen`/`narrow`), float32 and float64 as they are
ALL_FLOATS = ("float16", "bfloat16", "float32", "float64")

_REGISTRY: dict[str, Equation] = {}


def formula(doc: str) -> str:
    """The LaTeX of a docstring's first `.. math::` block, its lines joined ("" if none)."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith(".. math::"):
            continue
        indent = len(line) - len(line.lstrip())
        body = [stripped.removeprefix(".. math::").strip()]
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt.strip())
        return " ".join(part for part in body if part).strip()
    return ""


def equation(
    *,
    chapter: str,
    seeds: tuple[str, ...],
    identities: tuple[Identity, ...] = (),
    tiers: str = "SPDRXE",
    errata: tuple[str, ...] = (),
    oracle: str | None = None,
    dtypes: tuple[str, ...] = ("float32", "float64"),
    limits: tuple[Limit, ...] = (),
    variants: tuple[Variant, ...] = (),
) -> Callable[[Callable], Callable]:
    """File the decorated function in the registry and return it unchanged."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTERS)}")
    bad = set(tiers) - set(TIERS)
    if bad:
        raise ValueError(f"unknown tiers {sorted(bad)}; tiers are {''.join(TIERS)}")
    for ident in identities:
        if set(ident.tiers) - set(tiers):
            raise ValueError(f"identity {ident.key!r} names tiers outside {tiers!r}")
    if variants and sum(var.default for var in variants) != 1:
        raise ValueError("exactly one variant must be the default (the form without options)")

    def register(func: Callable) -> Callable:
        name = func.__name__
        if name in _REGISTRY:
            raise ValueError(f"equation {name!r} is registered twice")
        if not formula(inspect.getdoc(func) or ""):
            raise ValueError(f"{name}: the docstring has no `.. math::` block (the formula)")
        _REGISTRY[name] = Equation(
            name=name,
            func=func,
            chapter=chapter,
            seeds=seeds,
            tiers=tiers,
            identities=identities,
            errata=errata,
            oracle=oracle,
            dtypes=dtypes,
            limits=limits,
            variants=variants,
        )
        return func

    return register



def catalogue(chapter: str | None = None) -> dict[str, Equation]:
    """Every registered equation's record, by name, in catalogue order."""
    from . import _chapters  # noqa: F401  (importing the chapters fills the registry)

    order = list(CHAPTERS)
    records = sorted(_REGISTRY.values(), key=lambda r: order.index(r.chapter))
    return {r.name: r for r in records if chapter is None or r.chapter == chapter}
