"""The equation registry is complete and honest.

Every public equation has a full record (formula, sources, identities, inputs, error inputs),
its signature keeps the public contract of EQUATIONS.md, the conformance suite really has a
test for every tier the record promises, and the functions keep the conventions every record
relies on (inputs never modified; value checks can be switched off and come back).
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import array_api_compat.numpy as xp_np
import numpy as np
import pytest

import spec
from conformance import records
from conformance.records import ErrorCase, Sample

REPO = Path(__file__).resolve().parents[1]
EQUATIONS_MD = Path(__file__).resolve().parents[2] / "shared" / "EQUATIONS.md"
CATALOGUE = spec.catalogue()
NAMES = list(CATALOGUE)
#: public names in spec.__all__ that are functions but not equations
HELPERS = {"catalogue", "value_checks"}
FLOATS = ("float32", "float64")


def _record_params():
    return [pytest.param(name, id=name) for name in NAMES]


def _build(builder, dtype: str):
    return builder(xp_np, getattr(xp_np, dtype), "cpu")


# --- completeness ----------------------------------------------------------------------------
def test_catalogue_is_not_empty_and_keyed_by_function_name():
    assert len(CATALOGUE) >= 13
    for name, rec in CATALOGUE.items():
        assert rec.name == name
        assert rec.func.__name__ == name
        assert getattr(spec, name) is rec.func, f"spec.{name} is not the registered function"


def test_every_public_function_is_registered():
    functions = {n for n in spec.__all__ if inspect.isfunction(getattr(spec, n))}
    assert HELPERS <= functions  # the helpers are still there (else this test is stale)
    missing = functions - HELPERS - set(CATALOGUE)
    assert not missing, f"public functions without a registry record: {sorted(missing)}"


def test_every_registered_equation_is_public():
    missing = set(CATALOGUE) - set(spec.__all__)
    assert not missing, f"registered but not in spec.__all__: {sorted(missing)}"


def test_catalogue_filters_by_chapter_in_catalogue_order():
    order = list(spec.CHAPTERS)
    chapters = [rec.chapter for rec in CATALOGUE.values()]
    assert chapters == sorted(chapters, key=order.index)
    probability = spec.catalogue("probability")
    assert probability and all(r.chapter == "probability" for r in probability.values())
    assert "softmax" in probability and "softmax_cross_entropy" not in probability


# --- one record per equation -----------------------------------------------------------------
@pytest.mark.parametrize("name", _record_params())
def test_record_has_formula_and_sources(name):
    rec = CATALOGUE[name]
    assert isinstance(rec.latex, str) and rec.latex.strip(), f"{name}: empty latex"
    assert rec.chapter in spec.CHAPTERS
    assert rec.seeds, f"{name}: no seeds"
    assert len(set(rec.seeds)) == len(rec.seeds), f"{name}: duplicate seeds {rec.seeds}"
    for seed in rec.seeds:
        assert seed[:3] in spec.SEEDS, f"{name}: seed {seed!r} is not one of {list(spec.SEEDS)}"
        rest = seed[3:]
        assert rest == "" or re.fullmatch(r" §\d+(\.\d+)*", rest), (
            f"{name}: seed {seed!r} should look like '002' or '002 §2.1.1'"
        )


@pytest.mark.parametrize("name", _record_params())
def test_record_docstring(name):
    rec = CATALOGUE[name]
    doc = inspect.getdoc(rec.func)
    assert doc, f"{name}: no docstring"
    first = doc.split("\n", 1)[0]
    assert first == rec.summary
    assert first[0].isupper(), f"{name}: summary {first!r} does not start a sentence"
    assert first.endswith("."), f"{name}: summary {first!r} is not a sentence ending in '.'"
    assert len(first.split()) >= 3, f"{name}: summary {first!r} is too short"
    lines = doc.split("\n")
    assert len(lines) == 1 or lines[1] == "", f"{name}: the summary must be one line"
    assert ".. math::" in doc, f"{name}: docstring has no '.. math::' formula"
    assert doc.split(".. math::", 1)[1].strip(), f"{name}: empty '.. math::' block"


@pytest.mark.parametrize("name", _record_params())
def test_record_tiers_and_identities(name):
    rec = CATALOGUE[name]
    assert rec.tiers, f"{name}: no tiers"
    assert set(rec.tiers) <= set("SPDRXE"), f"{name}: tiers {rec.tiers!r}"
    assert set(spec.TIERS) == set("SPDRXE")
    assert len(set(rec.tiers)) == len(rec.tiers), f"{name}: repeated tier in {rec.tiers!r}"
    assert rec.identities, f"{name}: no identities"
    keys = [i.key for i in rec.identities]
    assert len(set(keys)) == len(keys), f"{name}: duplicate identity keys {keys}"
    for ident in rec.identities:
        assert ident.statement.strip(), f"{name}.{ident.key}: empty statement"
        assert ident.tiers and set(ident.tiers) <= set(rec.tiers), (
            f"{name}.{ident.key}: tiers {ident.tiers!r} not within {rec.tiers!r}"
        )


@pytest.mark.parametrize("name", _record_params())
def test_record_has_input_builders(name):
    rec = records.get(name)
    assert callable(rec.samples), f"{name}: no sample inputs"
    assert callable(rec.errors), f"{name}: no error inputs"
    for dtype in FLOATS:
        samples = _build(rec.samples, dtype)
        assert samples, f"{name}: the sample inputs are empty"
        assert all(isinstance(s, Sample) for s in samples)
        assert all(s.note for s in samples), f"{name}: a sample without a note"
        if rec.references is not None:
            assert all(isinstance(s, Sample) for s in _build(rec.references, dtype))


@pytest.mark.parametrize("name", _record_params())
def test_record_error_inputs(name):
    cases = _build(records.get(name).errors, "float64")
    assert len(cases) >= 3, f"{name} declares only {len(cases)} error inputs"
    notes = [c.note for c in cases]
    assert len(set(notes)) == len(notes), f"{name}: repeated error-input notes {notes}"
    for case in cases:
        assert isinstance(case, ErrorCase)
        assert case.exc in (ValueError, TypeError), (
            f"{name} [{case.note}]: the conventions allow ValueError or TypeError, not {case.exc}"
        )
        assert len(case.match) >= 8, f"{name} [{case.note}]: regex {case.match!r} is too vague"
        re.compile(case.match)
        assert case.note, f"{name}: an error input without a note"


@pytest.mark.parametrize("name", _record_params())
def test_signature_arrays_positional_options_keyword(name):
    params = inspect.signature(CATALOGUE[name].func).parameters.values()
    for p in params:
        assert p.kind in (p.POSITIONAL_ONLY, p.KEYWORD_ONLY), (
            f"{name}: parameter {p.name!r} is {p.kind.description}; arrays must be "
            "positional-only and options keyword-only"
        )


# --- the public contract in EQUATIONS.md ------------------------------------------------------
_SIGNATURE = re.compile(r"`([A-Za-z_]\w*)\(([^`]*)\)`")
_UNSPECIFIED = object()
_NO_DEFAULT = inspect.Parameter.empty
_P = inspect.Parameter


def _contract_signatures(text: str) -> dict[str, str]:
    """name → parameter text of every signature in the first column of a catalogue table."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        first_cell = line.split("|")[1]
        for m in _SIGNATURE.finditer(first_cell):
            out.setdefault(m.group(1), m.group(2))
    return out


def _split_top_level(text: str) -> list[str]:
    parts, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _parse_contract(params_text: str):
    """[(name, kind, default)] and whether the list ends in an unspecified `…`."""
    tokens = _split_top_level(params_text)
    slash = "/" in tokens
    kind = _P.POSITIONAL_ONLY if slash else _P.POSITIONAL_OR_KEYWORD
    out, truncated = [], False
    for tok in tokens:
        if tok == "/":
            kind = _P.POSITIONAL_OR_KEYWORD
            continue
        if tok == "*":
            kind = _P.KEYWORD_ONLY
            continue
        if tok in ("…", "..."):
            truncated = True
            break
        name, eq, default_text = tok.partition("=")
        name = name.strip()
        assert name.isidentifier(), f"cannot read parameter {tok!r} in ({params_text})"
        default = _NO_DEFAULT
        if eq:
            default_text = default_text.strip()
            if default_text in ("…", "..."):
                default = _UNSPECIFIED
            else:
                try:
                    default = ast.literal_eval(default_text)
                except (ValueError, SyntaxError):
                    default = _UNSPECIFIED
        out.append((name, kind, default))
    return out, truncated


def test_contract_parser_reads_the_conventions():
    parsed, truncated = _parse_contract('x, W, b=None, /, *, activation="relu", eps=…')
    assert parsed == [
        ("x", _P.POSITIONAL_ONLY, _NO_DEFAULT),
        ("W", _P.POSITIONAL_ONLY, _NO_DEFAULT),
        ("b", _P.POSITIONAL_ONLY, None),
        ("activation", _P.KEYWORD_ONLY, "relu"),
        ("eps", _P.KEYWORD_ONLY, _UNSPECIFIED),
    ]
    assert not truncated
    parsed, truncated = _parse_contract("d, L, V, /, *, …")
    assert [p[0] for p in parsed] == ["d", "L", "V"] and truncated
    assert _parse_contract("")[0] == []


@pytest.fixture(scope="module")
def contract() -> dict[str, str]:
    if not EQUATIONS_MD.is_file():
        pytest.skip(f"EQUATIONS.md not found at {EQUATIONS_MD} (it sits beside the clone in CI)")
    return _contract_signatures(EQUATIONS_MD.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", _record_params())
def test_signature_keeps_the_contract_of_equations_md(contract, name):
    if name not in contract:
        # EQUATIONS.md §3: "Each has <name>_grad(x)" — derivative companions of a documented
        # equation are part of the contract without a row of their own
        base = re.sub(r"_(grad|vjp)$", "", name)
        assert base != name and base in contract, (
            f"{name} is registered but has no signature in EQUATIONS.md"
        )
        return
    documented, _ = _parse_contract(contract[name])
    real = list(inspect.signature(CATALOGUE[name].func).parameters.values())
    where = f"{name}: EQUATIONS.md has `{name}({contract[name]})`, the code has {real}"

    doc_pos = [(n, k) for n, k, _ in documented if k is not _P.KEYWORD_ONLY]
    real_pos = [(p.name, p.kind) for p in real if p.kind is not _P.KEYWORD_ONLY]
    assert real_pos == doc_pos, f"positional parameters differ. {where}"

    doc_kw = [n for n, k, _ in documented if k is _P.KEYWORD_ONLY]
    real_kw = [p.name for p in real if p.kind is _P.KEYWORD_ONLY]
    assert real_kw[: len(doc_kw)] == doc_kw, (
        f"keyword options must keep the documented names and order (extra ones go last). "
        f"{where}"
    )
    by_name = {p.name: p for p in real}
    for n, _, default in documented:
        if default is _UNSPECIFIED:
            continue
        got = by_name[n].default
        if default is _NO_DEFAULT:
            assert got is _NO_DEFAULT, f"{n} is documented without a default. {where}"
        else:
            same = (got is not _NO_DEFAULT and got == default
                    and isinstance(got, bool) == isinstance(default, bool))
            assert same, f"default of {n}: documented {default!r}, code {got!r}. {where}"


# --- the conformance suite covers every promised tier ------------------------------------------
class _Collector:
    """A pytest plugin that records the `spec` marker of every collected item."""

    def __init__(self) -> None:
        self.items: list[tuple[str, object]] = []

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            self.items.append((item.nodeid, item.get_closest_marker("spec")))


@pytest.fixture(scope="module")
def conformance_items():
    collector = _Collector()
    code = pytest.main(
        ["--collect-only", "-q", str(REPO / "conformance"), "-p", "no:cacheprovider",
         "--backend", "numpy"],
        plugins=[collector],
    )
    assert code == pytest.ExitCode.OK, f"collecting the conformance suite failed: {code!r}"
    assert collector.items, "the conformance suite collected no tests"
    return collector.items


def test_every_conformance_test_is_marked(conformance_items):
    for nodeid, marker in conformance_items:
        assert marker is not None, f"{nodeid} has no @pytest.mark.spec(...)"
        assert marker.args, f"{nodeid}: spec marker names no equation"
        unknown = set(marker.args) - set(CATALOGUE)
        assert not unknown, f"{nodeid}: spec marker names unregistered {sorted(unknown)}"
        tier = marker.kwargs.get("tier")
        assert isinstance(tier, str) and len(tier) == 1 and tier in spec.TIERS, (
            f"{nodeid}: spec marker has tier {tier!r}"
        )
        assert set(marker.kwargs) <= {"tier", "identities", "identity"}, (
            f"{nodeid}: unexpected marker options {sorted(marker.kwargs)}")
        for equation in marker.args:
            assert tier in CATALOGUE[equation].tiers, (
                f"{nodeid}: tests {equation} in tier {tier}, which its record does not list"
            )


@pytest.mark.parametrize("name", _record_params())
def test_every_promised_tier_has_a_test(conformance_items, name):
    covered = {marker.kwargs.get("tier") for _, marker in conformance_items
               if marker is not None and name in marker.args}
    missing = [t for t in CATALOGUE[name].tiers if t not in covered]
    assert not missing, f"{name}: no conformance test for tier(s) {missing}"


@pytest.mark.parametrize("name", _record_params())
def test_every_declared_identity_has_a_test_in_each_of_its_tiers(conformance_items, name):
    """A declared identity × tier that no test claims (marker `identities=`) is a gap; the full
    report shows the same with outcomes (`python -m conformance` fails on it)."""
    from conformance import plugin

    rec = CATALOGUE[name]
    claimed = set()
    for _, marker in conformance_items:
        if marker is not None and name in marker.args:
            tier = marker.kwargs.get("tier")
            keys, _ = plugin.identity_keys(tuple(marker.args), tier,
                                           plugin._marker_identities(marker))
            claimed |= {(key, tier) for key in keys}
    missing = [f"{ident.key} tier {tier}" for ident in rec.identities for tier in ident.tiers
               if (f"{name}:{ident.key}", tier) not in claimed]
    assert not missing, f"{name}: identities without a test: {missing}"


# --- conventions every record relies on --------------------------------------------------------
def test_value_checks_switch_off_and_come_back():
    p = np.asarray([0.5, -0.5, 1.0])
    with pytest.raises(ValueError, match="p must be non-negative"):
        spec.entropy(p)
    with spec.value_checks(False):
        with np.errstate(invalid="ignore"):
            out = spec.entropy(p)  # log(−0.5) is NaN: no error, the NaN propagates
        assert np.isnan(out)
        # structural checks stay on
        with pytest.raises(TypeError, match="real floating dtype"):
            spec.entropy(np.asarray([1, 0]))
        with spec.value_checks(True), pytest.raises(ValueError, match="non-negative"):
            spec.entropy(p)
        with np.errstate(invalid="ignore"):
            assert np.isnan(spec.entropy(p))  # the inner block restored False
    with pytest.raises(ValueError, match="p must be non-negative"):
        spec.entropy(p)


def test_value_checks_come_back_after_an_exception():
    p = np.asarray([-1.0, 2.0])
    with pytest.raises(RuntimeError), spec.value_checks(False):
        raise RuntimeError("boom")
    with pytest.raises(ValueError, match="non-negative"):
        spec.entropy(p)


def _copy_args(args):
    return tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)


def _arrays_in(obj, path="arg"):
    """Every NumPy array inside an argument (lists, tuples and dicts of parameters too)."""
    if isinstance(obj, np.ndarray):
        yield path, obj
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _arrays_in(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield from _arrays_in(item, f"{path}[{key!r}]")


def _takes_arrays(name) -> bool:
    return any(True for sample in _build(records.get(name).samples, "float64")
               for _ in _arrays_in((sample.args, sample.kwargs)))


@pytest.mark.parametrize("name", [p for p in _record_params() if _takes_arrays(p.values[0])])
def test_functions_never_modify_their_inputs(name):
    """No equation writes into an array it was given, however deeply nested (parameters)."""
    import copy

    rec = CATALOGUE[name]
    evidence = records.get(name)
    builders = [evidence.samples] + (
        [evidence.references] if evidence.references is not None else []
    )
    checked = 0
    for dtype in FLOATS:
        for builder in builders:
            for sample in _build(builder, dtype):
                before = copy.deepcopy((sample.args, sample.kwargs))
                with np.errstate(all="ignore"):
                    rec.func(*sample.args, **sample.kwargs)
                after = dict(_arrays_in((sample.args, sample.kwargs)))
                for where, old in _arrays_in(before):
                    new = after[where]
                    assert new.dtype == old.dtype and new.shape == old.shape
                    np.testing.assert_array_equal(
                        new, old, err_msg=f"{name} [{sample.note}] modified {where}"
                    )
                    checked += 1
    assert checked > 0


def test_importing_spec_imports_no_framework():
    """spec/ finds a framework through the arrays it is given, never by importing one."""
    code = ("import sys, spec; spec.catalogue(); "
            "print(sorted(m for m in ('torch', 'jax', 'scipy', 'cupy', 'cupyx', 'dask') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout
