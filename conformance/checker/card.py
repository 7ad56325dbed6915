"""The report card of one candidate: what each section found, as JSON and Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

__all__ = ["AccuracyCase", "AccuracyResult", "Card", "EdgeResult", "GradientResult",
           "PropertyResult", "VariantResult"]

#: statuses that fail a card
FAILING = {"broken", "failed", "differs", "mismatch"}


@dataclass
class PropertyResult:
    """One tier-P property of the equation, run on the candidate in one dtype."""

    name: str
    identities: tuple[str, ...]
    dtype: str
    #: held | broken | skipped (a missing library, a documented limit) | n/a (the property
    #: needs an option or a form the candidate does not have)
    status: str
    #: examples that ran to the end (Hypothesis draws, plus the property's explicit examples)
    examples: int = 0
    #: the smallest falsifying example Hypothesis found: each draw's value by its label
    counterexample: dict | None = None
    message: str = ""


@dataclass
class AccuracyCase:
    note: str
    candidate_ulp: float
    spec_ulp: float


@dataclass
class AccuracyResult:
    """The error against mpmath in ulps of one dtype, the candidate's beside the spec's,
    judged by: candidate ≤ k × spec + floor (worst over the dtype's cases)."""

    dtype: str
    status: str  # passed | failed | n/a
    candidate_ulp: float | None = None
    spec_ulp: float | None = None
    allowed_ulp: float | None = None
    k: float = 2.0
    floor_ulp: float = 1.0
    #: the records' tier-R budget of the spec in this dtype (for reference)
    budget_ulp: float | None = None
    reference: str = "mpmath (50 digits)"
    cases: list[AccuracyCase] = field(default_factory=list)
    #: the cases where the candidate is above the allowed error
    worst: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class GradientResult:
    """The candidate's autograd vector-Jacobian product against the spec's."""

    case: str
    dtype: str
    status: str  # agrees | differs | n/a
    reference: str = ""
    max_abs_error: float | None = None
    tolerance: float | None = None
    message: str = ""


@dataclass
class EdgeResult:
    """The candidate on one edge input, beside the spec."""

    case: str
    dtype: str
    #: agrees | differs | better (far from the spec but at least as close to mpmath: the
    #: spec is wrong there) | n/a
    status: str
    candidate: str = ""
    spec: str = ""
    message: str = ""


@dataclass
class VariantResult:
    """Which named form of the equation the candidate computes."""

    declared: list[str]
    expected: str | None
    matched: str | None  # the variant's name, "none", or None (no variants declared)
    status: str  # passed | mismatch | n/a
    #: each variant's largest distance from the candidate, in ulps of the dtype
    distance_ulp: dict[str, float] = field(default_factory=dict)
    tolerance_ulp: float | None = None
    dtype: str = ""
    #: variants no input told apart from the match
    indistinct: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class Card:
    """The report card of a candidate implementation of one equation."""

    equation: str
    candidate: str
    backend: str
    dtypes: tuple[str, ...]
    profile: str
    options: dict = field(default_factory=dict)
    variant: VariantResult | None = None
    properties: list[PropertyResult] = field(default_factory=list)
    accuracy: list[AccuracyResult] = field(default_factory=list)
    gradients: list[GradientResult] = field(default_factory=list)
    edges: list[EdgeResult] = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    seconds: float = 0.0

    # ------------------------------------------------------------------ verdict
    @property
    def passed(self) -> bool:
        return not self.diagnoses()

    def diagnoses(self) -> list[str]:
        """One line per failure, each naming its section: what is wrong, and where."""
        out = []
        if self.variant is not None and self.variant.status in FAILING:
            out.append(f"variant: {self.variant.message}")
        for p in self.properties:
            if p.status in FAILING:
                where = f" at {_short(p.counterexample)}" if p.counterexample else ""
                out.append(f"property {p.name} ({', '.join(p.identities)}; {p.dtype}) broken"
                           f"{where}: {_first_line(p.message)}")
        for a in self.accuracy:
            if a.status in FAILING:
                out.append(f"accuracy ({a.dtype}): {a.message}")
        for g in self.gradients:
            if g.status in FAILING:
                out.append(f"gradient {g.case} ({g.dtype}): {g.message}")
        for e in self.edges:
            if e.status in FAILING:
                out.append(f"edge {e.case} ({e.dtype}): {e.message}")
        return out

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["diagnoses"] = self.diagnoses()
        return _jsonable(out)

    @classmethod
    def from_dict(cls, data: dict) -> Card:
        """The card `to_dict` wrote (JSON's "inf"/"nan" strings back to floats)."""
        def num(x):
            return float(x) if isinstance(x, str) and x in ("inf", "-inf", "nan") else x

        def build(kind, d):
            d = {k: num(v) for k, v in d.items()}
            if kind is AccuracyResult:
                d["cases"] = [AccuracyCase(**{k: num(v) for k, v in c.items()})
                              for c in d.get("cases", [])]
            if kind is PropertyResult:
                d["identities"] = tuple(d.get("identities", ()))
            if kind is VariantResult:
                d["distance_ulp"] = {k: num(v) for k, v in d.get("distance_ulp", {}).items()}
            return kind(**d)

        return cls(
            equation=data["equation"], candidate=data["candidate"], backend=data["backend"],
            dtypes=tuple(data["dtypes"]), profile=data["profile"],
            options=data.get("options", {}),
            variant=build(VariantResult, data["variant"]) if data.get("variant") else None,
            properties=[build(PropertyResult, x) for x in data.get("properties", [])],
            accuracy=[build(AccuracyResult, x) for x in data.get("accuracy", [])],
            gradients=[build(GradientResult, x) for x in data.get("gradients", [])],
            edges=[build(EdgeResult, x) for x in data.get("edges", [])],
            versions=data.get("versions", {}), seconds=data.get("seconds", 0.0))

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_markdown(self) -> str:
        verdict = "✅ passed" if self.passed else "❌ failed"
        opts = (", ".join(f"{k}={v!r}" for k, v in self.options.items())
                if self.options else "the spec's default form")
        lines = [f"# Report card: `{self.candidate}` as `{self.equation}`", "",
                 f"**{verdict}** on `{self.backend}`, dtypes {', '.join(self.dtypes)}, "
                 f"Hypothesis profile `{self.profile}`; checked as {opts}; "
                 f"{self.seconds:.1f} s.", ""]
        if not self.passed:
            lines += ["## Diagnosis", ""] + [f"- {d}" for d in self.diagnoses()] + [""]
        lines += self._variant_md() + self._properties_md() + self._accuracy_md()
        lines += self._gradients_md() + self._edges_md()
        if self.versions:
            lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in self.versions.items()),
                      ""]
        return "\n".join(lines)

    def _variant_md(self) -> list[str]:
        v = self.variant
        if v is None:
            return []
        lines = ["## Named variant", ""]
        if not v.declared:
            return [*lines, f"{v.message}", ""]
        icon = {"passed": "✅", "mismatch": "❌"}.get(v.status, "⏭")
        lines.append(f"{icon} matches **{v.matched}** (expected {v.expected}). {v.message}")
        if v.distance_ulp:
            lines += ["", f"| variant | largest distance ({v.dtype} ulps; tolerance "
                      f"{_num(v.tolerance_ulp)}) |", "|---|---|"]
            lines += [f"| {name} | {_num(d)} |" for name, d in v.distance_ulp.items()]
        return [*lines, ""]

    def _properties_md(self) -> list[str]:
        if not self.properties:
            return ["## Properties", "", "No property of this equation runs on a candidate.", ""]
        icon = {"held": "✅", "broken": "❌", "skipped": "⏭", "n/a": "➖"}
        lines = ["## Properties", "", "| property | identities | dtype | result | examples | "
                 "counter-example / note |", "|---|---|---|---|---|---|"]
        for p in self.properties:
            note = (_short(p.counterexample) + " — " if p.counterexample else "") + \
                _first_line(p.message)
            lines.append(f"| {p.name} | {', '.join(p.identities)} | {p.dtype} | "
                         f"{icon.get(p.status, '')} {p.status} | {p.examples} | "
                         f"{_cell(note)} |")
        return [*lines, ""]

    def _accuracy_md(self) -> list[str]:
        if not self.accuracy:
            return []
        lines = ["## Accuracy against mpmath", "",
                 "Worst error in ulps of the dtype over the records' inputs; the candidate "
                 "passes at ≤ k × the spec's error + the floor.", "",
                 "| dtype | candidate | spec | allowed (k, floor) | result | note |",
                 "|---|---|---|---|---|---|"]
        for a in self.accuracy:
            icon = {"passed": "✅", "failed": "❌"}.get(a.status, "➖")
            lines.append(f"| {a.dtype} | {_num(a.candidate_ulp)} | {_num(a.spec_ulp)} | "
                         f"{_num(a.allowed_ulp)} ({_num(a.k)}, {_num(a.floor_ulp)}) | "
                         f"{icon} {a.status} | {_cell(a.message)} |")
        return [*lines, ""]

    def _gradients_md(self) -> list[str]:
        if not self.gradients:
            return []
        lines = ["## Gradients", "", "| case | dtype | against | result | max |error| "
                 "(tolerance) | note |", "|---|---|---|---|---|---|"]
        for g in self.gradients:
            icon = {"agrees": "✅", "differs": "❌"}.get(g.status, "➖")
            lines.append(f"| {g.case} | {g.dtype} | {g.reference} | {icon} {g.status} | "
                         f"{_num(g.max_abs_error)} ({_num(g.tolerance)}) | {_cell(g.message)} |")
        return [*lines, ""]

    def _edges_md(self) -> list[str]:
        if not self.edges:
            return []
        lines = ["## Edge semantics", "", "| input | dtype | result | candidate | spec | note |",
                 "|---|---|---|---|---|---|"]
        for e in self.edges:
            icon = {"agrees": "✅", "differs": "❌", "better": "⭐"}.get(e.status, "➖")
            lines.append(f"| {e.case} | {e.dtype} | {icon} {e.status} | {_cell(e.candidate)} | "
                         f"{_cell(e.spec)} | {_cell(e.message)} |")
        return [*lines, ""]


# ------------------------------------------------------------------ formatting helpers
def _num(x) -> str:
    if x is None:
        return "—"
    x = float(x)
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "∞" if x > 0 else "−∞"
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


def _first_line(text: str, limit: int = 240) -> str:
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _short(values: dict | None, limit: int = 200) -> str:
    if not values:
        return ""
    text = ", ".join(f"{k}={_value_text(v)}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value_text(v) -> str:
    if isinstance(v, dict) and "array" in v:
        return str(v["array"]).replace("\n", " ")
    return repr(v)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _jsonable(obj):
    """Replace non-finite floats by strings and tuples by lists (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        if obj != obj:
            return "nan"
        if obj in (float("inf"), float("-inf")):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return repr(obj)
