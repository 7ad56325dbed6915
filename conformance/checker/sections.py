"""The five sections of a report card, run on one candidate, equation and backend."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from .. import derivatives, oracles, records, tolerances
from ..adapters import Unsupported
from ..helpers import build, np64, to_backend
from ..precision import as_float32, round_to
from ..properties import Trial
from ..settings import LOW_DTYPES
from . import inputs
from .card import (
    AccuracyCase,
    AccuracyResult,
    EdgeResult,
    GradientResult,
    PropertyResult,
    VariantResult,
)


def _skipped_type():
    """pytest's skip exception (properties skip through pytest.importorskip and the records'
    documented limits)."""
    import pytest

    return pytest.skip.Exception


def _exc_text(exc: BaseException) -> str:
    """The exception in one line; a bare `assert` is shown by its source line (the last frame
    of the traceback that is not in a library)."""
    text = str(exc).strip()
    if text:
        return f"{type(exc).__name__}: {text}"
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "site-packages" not in f.filename and f.line]
    if frames:
        return f"{type(exc).__name__} at `{frames[-1].line.strip()}` ({frames[-1].name})"
    return type(exc).__name__


def _jsonable_value(value):
    """A drawn value for the card: arrays as lists (with dtype and shape), the rest as is."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        shown = arr.astype(np.float64) if arr.dtype.kind in "fV" else arr
        flat = shown.reshape(-1).tolist()
        listed = shown.tolist() if arr.size <= 64 else [*flat[:64], "…"]
        return {"array": listed, "dtype": arr.dtype.name, "shape": list(arr.shape)}
    if isinstance(value, (list, tuple)):
        return [_jsonable_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable_value(v) for k, v in value.items()}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def _leaves(out) -> list:
    if isinstance(out, dict):
        return [x for key in sorted(out) for x in _leaves(out[key])]
    if isinstance(out, (list, tuple)):
        return [x for item in out for x in _leaves(item)]
    return [out]


def _describe(arrays: list[np.ndarray]) -> str:
    """What an output holds, in a few words: empty, NaN, ±∞, zeros, finite."""
    flat = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)
    if flat.size == 0:
        return "empty"
    nan, inf = int(np.sum(np.isnan(flat))), int(np.sum(np.isinf(flat)))
    parts = []
    if nan:
        parts.append("all NaN" if nan == flat.size else f"NaN in {nan} of {flat.size}")
    if inf:
        parts.append(f"±∞ in {inf} of {flat.size}")
    if not parts:
        parts.append("zeros" if not np.any(flat) else "finite")
    return ", ".join(parts)


def _describe_short(arrays) -> str:
    return _describe([a for a in arrays if isinstance(a, np.ndarray)])


class _Run:
    """One candidate, equation and backend: each method runs one section."""

    def __init__(self, name, rec, backend, raw, impl, options, profile):
        from . import PROFILES

        self.name, self.rec, self.backend = name, rec, backend
        self.raw, self.impl, self.options = raw, impl, dict(options)
        self.profile = profile
        self.k = inputs.factor(name)
        # "quick" (the tests' profile) reports the first counter-example it meets; the others
        # shrink it to the smallest Hypothesis can find
        phases = [Phase.explicit, Phase.generate] if profile == "quick" else list(Phase)
        self.settings = settings(
            max_examples=PROFILES[profile], deadline=None, database=None, phases=phases,
            derandomize=profile in ("quick", "ci"), suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False, print_blob=False)
        self.record = records.get(name)
        self._reference = None

    # ------------------------------------------------------------------ helpers
    def _budget(self, dtype) -> float | None:
        try:
            return float(records.ulp_budget(self.name, dtype))
        except KeyError:
            return None

    def _call(self, fn, case, dtype, *, backend=None, **extra):
        """fn on the backend (the candidate's, or `backend`) with the case's arguments;
        leaves as host float64 arrays."""
        bk = self.backend if backend is None else backend
        args = [to_backend(bk, a) for a in case.args]
        kwargs = {k: to_backend(bk, v) for k, v in {**case.kwargs, **extra}.items()}
        out = fn(*args, **kwargs)
        return [np64(bk, x) if not isinstance(x, (bool, str)) else x
                for x in _leaves(out)]

    @property
    def reference(self):
        """The backend the spec's reference results are computed on (the variant and edge
        sections): NumPy, the suite's reference backend. The spec's semantics are the same on
        every backend (the suite proves it), and JAX, which compiles every operation for
        every new shape, then compiles only the candidate."""
        if self._reference is None:
            import backends

            try:
                self._reference = backends.get("numpy")
            except Exception:
                self._reference = self.backend
        return self._reference

    def _spec(self, case, dtype, form=None, *, reference=False):
        """The spec's result in `dtype`, in the form the candidate is checked as (or `form`,
        a dict of options), on the candidate's backend (or, with `reference`, on the
        reference backend): computed as it is where the equation declares the dtype, else (a
        low precision it does not declare yet, or one the reference backend lacks) by its
        dtype policy, computed in float32 and rounded once."""
        form = self.options if form is None else form
        bk = self.reference if reference else self.backend
        if dtype not in LOW_DTYPES or (dtype in self.rec.dtypes and dtype in bk.float_dtypes):
            return self._call(self.rec.func, case, dtype, backend=bk, **form)
        wide = _as_float32(case)
        out = self._call(self.rec.func, wide, "float32", backend=bk, **form)
        return [round_to(x, dtype) if isinstance(x, np.ndarray) else x for x in out]

    def _cases(self, builder, dtype) -> list:
        if builder is None:
            return []
        return build(builder, dtype)

    def _floor(self, want, i, n, args, kwargs):
        """The scale of an ulp for output leaf i of n (tier R's floors; normwise otherwise)."""
        if n == 1:
            try:
                return oracles.scale_floor(self.name, want, args, kwargs)
            except (KeyError, ValueError, TypeError, IndexError):
                pass
        if inputs.family(self.name) == "optimizer":
            theta = np.abs(np.asarray(args[0], dtype=np.float64))
            return np.maximum(np.abs(want), theta) if i == 0 else np.abs(want)
        finite = np.abs(want[np.isfinite(want)]) if np.size(want) else np.zeros(0)
        return float(np.max(finite)) if finite.size else 0.0

    def _ulps(self, got: list, want: list, dtype, args, kwargs, *, rounded=False) -> float:
        """The largest error of `got` from `want` in ulps of dtype (∞ for a NaN or ∞ where
        the other is finite, or a different structure)."""
        if len(got) != len(want):
            return math.inf
        worst = 0.0
        for i, (g, w) in enumerate(zip(got, want)):
            g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
            if g.shape != w.shape:
                return math.inf
            if g.size == 0:
                continue
            floor = self._floor(w, i, len(want), args, kwargs)
            ref = round_to(w, dtype) if rounded else w
            err = oracles.ulp_error(g, ref, dtype, floor=floor)
            worst = max(worst, float(np.max(err)))
        return worst

    # ------------------------------------------------------------------ 1. variant
    def variant(self, expected, dtypes) -> VariantResult:
        declared = [v.name for v in self.rec.variants]
        forms = {v.name: dict(v.options) for v in self.rec.variants}
        if self.options and expected is None:
            # a form the spec has not named: compare with it and with the default form
            defaults = {k: _default(self.rec.func, k) for k in self.options}
            forms = {**forms, _form_name(self.options): dict(self.options)}
            if not self.rec.variants:
                forms = {_form_name(defaults, default=True): {}, **forms}
            expected = _form_name(self.options)
        if not forms:
            return VariantResult(declared=[], expected=None, matched=None, status="n/a",
                                 message=f"the spec names no variants of {self.name}")
        expected = expected or next(iter(forms))
        # forms are told apart best in the widest dtype the backend (and the candidate) has
        for dtype in [d for d in ("float64", "float32") if d in self.backend.float_dtypes]:
            votes, distance, told, used, far = self._votes(forms, dtype)
            if used:
                break
        used_by = {v.name: v.used_by for v in self.rec.variants}
        tol = self._variant_tol(dtype)
        result = VariantResult(declared=declared, expected=expected, matched="none",
                               status="mismatch", distance_ulp=distance, tolerance_ulp=tol,
                               dtype=dtype)
        if not used or not (votes or far):
            result.matched, result.status = None, "n/a"
            result.message = ("no input ran on the candidate and every form" if not used else
                              "no input told the forms apart")
            return result
        # each vote is the set of forms the candidate is nearest to on one input (more than
        # one where that input does not tell the nearest form from another): the candidate
        # computes a form that every vote holds
        chosen = set.intersection(*votes) if votes else set()
        if len(chosen) > 1:
            chosen = {expected} if expected in chosen else {sorted(chosen)[0]}
        if len(chosen) == 1:
            matched = chosen.pop()
            result.matched = matched
            result.indistinct = [f for f in forms if f != matched and f not in told[matched]]
            if matched == expected or expected in result.indistinct:
                result.status = "passed"
                result.message = f"computes the ‘{expected}’ form"
                if result.indistinct:
                    result.message += (f" (not told apart from {', '.join(result.indistinct)} "
                                       "on these inputs)")
            else:
                who = f" ({used_by[matched]})" if used_by.get(matched) else ""
                result.message = (f"computes the ‘{matched}’ form{who}, not the "
                                  f"‘{expected}’ form it is checked as")
            if distance[matched] > tol:
                result.message += (f"; {_fmt(distance[matched])} ulps from it at worst "
                                   f"(tolerance {_fmt(tol)}: see the accuracy section)")
            return result
        counts = {}
        for vote in votes:
            key = " or ".join(sorted(vote))
            counts[key] = counts.get(key, 0) + 1
        if far:
            counts["near none"] = far
        result.message = ("matches none of the forms " + ", ".join(map(repr, forms))
                          + " (per input that tells them apart: "
                          + ", ".join(f"{f} ×{n}" for f, n in counts.items())
                          + f"; expected ‘{expected}’)")
        return result

    def _variant_tol(self, dtype) -> float:
        return (self.k + 1) * (self._budget(dtype) or 16.0) + inputs.FLOOR_ULP

    def _votes(self, forms, dtype):
        """For each input that tells the forms apart (two forms more than 4 tolerances apart),
        the form nearest the candidate, if it is nearer than half the way to the next form;
        each form's largest distance from the candidate over those inputs; which forms some
        input told apart; the number of inputs that ran; the number of inputs that told the
        forms apart but where the candidate was near none of them."""
        keys = {k for opts in forms.values() for k in opts} | set(self.options)
        tol = self._variant_tol(dtype)
        cases = (self._cases(inputs.distinguishing(self.name), dtype)
                 + self._cases(self.record.samples, dtype)
                 + self._cases(self.record.references, dtype))
        votes, distance = [], dict.fromkeys(forms, 0.0)
        told = {a: set() for a in forms}
        used = far = 0
        for case in cases:
            plain = _replace(case, kwargs={k: v for k, v in case.kwargs.items()
                                           if k not in keys})
            try:
                got = self._call(self.raw, plain, dtype)
                outs = {form: self._spec(plain, dtype, opts, reference=True)
                        for form, opts in forms.items()}
            except Exception:  # an input the candidate or a form refuses tells nothing
                continue
            used += 1
            apart = {}
            for a in forms:
                for b in forms:
                    if a < b:
                        gap = self._ulps(outs[a], outs[b], dtype, case.args, plain.kwargs)
                        if gap > 4 * tol:
                            apart[a, b] = apart[b, a] = gap
                            told[a].add(b)
                            told[b].add(a)
            if not apart:
                continue
            d = {f: self._ulps(got, outs[f], dtype, case.args, {**plain.kwargs, **forms[f]})
                 for f in forms}
            for f in forms:
                distance[f] = max(distance[f], d[f])
            nearest = min(d, key=d.get)
            rivals = [apart[nearest, f] for f in forms if (nearest, f) in apart]
            # an input on which the candidate is far from every form (a NaN where all of them
            # are finite, say) is for the edge and accuracy sections: it casts no vote
            if d[nearest] < 0.5 * min(rivals):
                votes.append({nearest} | {f for f in forms if f != nearest
                                          and (nearest, f) not in apart})
            else:
                far += 1
        return votes, distance, told, used, far

    # ------------------------------------------------------------------ 2. properties
    def property(self, p, dtype) -> PropertyResult:
        skipped = _skipped_type()
        result = PropertyResult(p.name, tuple(p.identities), dtype, "held")
        impl, backend = self.impl, self.backend
        for example in p.examples:
            if example.dtype not in (None, dtype):
                continue
            try:
                p.check(impl, Trial.replaying(backend, dtype, example, p.equation))
                result.examples += 1
            except Unsupported:
                continue
            except skipped as exc:
                result.status, result.message = "skipped", str(exc)
                return result
            except Exception as exc:
                result.status, result.message = "broken", _exc_text(exc)
                result.counterexample = _jsonable_value(dict(example.values))
                return result
        if not p.draws:
            try:
                p.check(impl, Trial(backend, dtype, None, p.equation))
                result.examples += 1
            except Unsupported as exc:
                result.status, result.message = "n/a", str(exc)
            except skipped as exc:
                result.status, result.message = "skipped", str(exc)
            except Exception as exc:
                result.status, result.message = "broken", _exc_text(exc)
            return result
        current: dict = {}
        ran = [0]

        @self.settings
        @given(data=st.data())
        def drawn(data):
            current.clear()

            def draw(strategy, label=None):
                value = data.draw(strategy, label=label)
                current[label] = value
                return value

            try:
                p.check(impl, Trial(backend, dtype, draw, p.equation))
            except Unsupported:
                reject()
            ran[0] += 1

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                drawn()
        except Unsatisfiable:
            result.status = "n/a"
            result.message = "the candidate cannot compute any input the property draws"
        except skipped as exc:
            result.status, result.message = "skipped", str(exc)
        except Exception as exc:
            result.status, result.message = "broken", _exc_text(exc)
            result.counterexample = _jsonable_value(dict(current))
        result.examples += ran[0]
        return result

    # ------------------------------------------------------------------ 3. accuracy
    def accuracy(self, dtype) -> AccuracyResult:
        oracle = oracles.ORACLES.get(self.name)
        budget = self._budget(dtype)
        res = AccuracyResult(dtype=dtype, status="n/a", k=self.k, floor_ulp=inputs.FLOOR_ULP,
                             budget_ulp=budget)
        if oracle is None:
            res.message = f"no mpmath oracle for {self.name}"
            return res
        low = dtype in LOW_DTYPES
        cases = (self._cases(self.record.samples, dtype)
                 + self._cases(self.record.references, dtype)
                 + self._cases(inputs.wide(self.name), dtype))
        skipped = []
        for case in cases:
            kwargs = {**case.kwargs, **self.options}
            exact = _as_float32(case) if low else case
            try:
                want = oracle(*exact.args, **{**exact.kwargs, **self.options})
            except TypeError:
                skipped.append(f"{case.note}: the oracle has no form {self.options}")
                continue
            except (ValueError, ZeroDivisionError):
                continue
            want = [np.asarray(w, dtype=np.float64) for w in _leaves(want)]
            try:
                mine = self._spec(case, dtype)
            except Exception:
                continue  # not a call the spec makes
            try:
                got = self._call(self.impl, case, dtype)
            except Unsupported as exc:
                skipped.append(f"{case.note}: {exc}")
                continue
            except Exception as exc:
                res.cases.append(AccuracyCase(case.note, math.inf, 0.0))
                res.worst.append(f"{case.note}: raises {_exc_text(exc)}")
                continue
            c = self._ulps(got, want, dtype, exact.args, kwargs, rounded=low)
            s = self._ulps(mine, want, dtype, exact.args, kwargs, rounded=low)
            res.cases.append(AccuracyCase(case.note, c, s))
        if not res.cases:
            res.message = "no input ran" + (f" ({'; '.join(skipped)})" if skipped else "")
            return res
        res.candidate_ulp = max(c.candidate_ulp for c in res.cases)
        res.spec_ulp = max(c.spec_ulp for c in res.cases)
        res.allowed_ulp = self.k * res.spec_ulp + inputs.FLOOR_ULP
        over = [c for c in res.cases if c.candidate_ulp > res.allowed_ulp]
        res.worst += [f"{c.note}: {_fmt(c.candidate_ulp)} ulp (spec {_fmt(c.spec_ulp)})"
                      for c in sorted(over, key=lambda c: -c.candidate_ulp)
                      if not any(w.startswith(f"{c.note}:") for w in res.worst)]
        res.status = "failed" if over else "passed"
        if over:
            res.message = (f"{_fmt(res.candidate_ulp)} ulp > {_fmt(res.allowed_ulp)} allowed "
                           f"({_fmt(self.k)} × the spec's {_fmt(res.spec_ulp)} + "
                           f"{_fmt(inputs.FLOOR_ULP)}); worst: {'; '.join(res.worst[:3])}")
        else:
            res.message = f"{len(res.cases)} inputs"
        if skipped:
            res.message += f"; left out: {'; '.join(skipped[:3])}" + (
                f" (+{len(skipped) - 3})" if len(skipped) > 3 else "")
        return res

    # ------------------------------------------------------------------ 4. gradients
    def gradients(self, dtypes) -> list[GradientResult]:
        wide = [d for d in ("float64", "float32") if d in dtypes]
        if not wide:
            return []
        if not self.backend.has_autograd:
            return [GradientResult("all", ",".join(wide), "n/a",
                                   message=f"backend {self.backend.id} has no autograd")]
        cases = [c for c in self.record.derivatives if c.fn is self.rec.func]
        out = []
        for dtype in wide:
            for case in cases:
                for seed in case.seeds[:1]:
                    out.append(self._gradient(case, seed, dtype))
        if not cases:
            out = [GradientResult("all", ",".join(wide), "n/a",
                                  message="the records hold no derivative case of the "
                                  "equation's own function")]
        return out

    def _gradient(self, case, seed, dtype) -> GradientResult:
        label = f"{case.label or f'arg{case.argnum}'} (seed {seed})"
        res = GradientResult(label, dtype, "n/a")
        args = [np.asarray(a, dtype=dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                else a for a in case.make_args(seed)]
        kwargs = dict(case.kwargs)
        try:
            shape = np.shape(self._call(self.rec.func, _Case(tuple(args), kwargs), dtype)[0])
        except Exception as exc:
            res.message = f"the spec refuses the case: {_exc_text(exc)}"
            return res
        cot = np.random.default_rng(seed + 99).normal(size=shape).astype(dtype)
        try:
            got = derivatives.autograd(self.backend, self.impl, args, case.argnum, cot, kwargs)
        except Unsupported as exc:
            res.message = str(exc)
            return res
        except Exception as exc:
            res.message = f"autograd does not see through the candidate: {_exc_text(exc)}"
            return res
        if case.closed is not None:
            res.reference = "the spec's closed form"
            on = [to_backend(self.backend, a) for a in args]
            want = np64(self.backend, case.closed(self.backend.xp, on,
                                                  to_backend(self.backend, cot)))
        else:
            res.reference = "autograd through the spec"
            want = derivatives.autograd(self.backend, self.rec.func, args, case.argnum, cot,
                                        kwargs)
            want = np.asarray(want, dtype=np.float64)
        got = np.asarray(got, dtype=np.float64)
        tol = tolerances.grads(dtype)
        err = np.abs(got - want)
        allowed = tol.atol + tol.rtol * np.abs(want)
        res.max_abs_error = float(np.max(err)) if err.size else 0.0
        res.tolerance = float(np.max(allowed)) if allowed.size else tol.atol
        if got.shape != want.shape or not np.all((err <= allowed) | (np.isnan(got)
                                                                    & np.isnan(want))):
            res.status = "differs"
            res.message = (f"|candidate − reference| up to {_fmt(res.max_abs_error)} "
                           f"> rtol {tol.rtol:.2g}, atol {tol.atol:.2g}")
        else:
            res.status = "agrees"
        return res

    # ------------------------------------------------------------------ 5. edges
    def edges(self, dtype) -> list[EdgeResult]:
        out = []
        budget = self._budget(dtype) or 16.0
        tol = (self.k + 1) * budget + inputs.FLOOR_ULP
        cases = (self._cases(inputs.edges(self.name), dtype)
                 + self._cases(self.record.references, dtype))
        seen = set()
        for case in cases:
            if case.note in seen:
                continue
            seen.add(case.note)
            res = EdgeResult(case.note, dtype, "n/a")
            out.append(res)
            try:
                want = self._spec(case, dtype, reference=True)
            except Exception as exc:
                res.message = f"the spec refuses it ({_exc_text(exc)})"
                res.spec = f"raises {type(exc).__name__}"
                continue
            res.spec = _describe([w for w in want if isinstance(w, np.ndarray)])
            try:
                got = self._call(self.impl, case, dtype)
            except Unsupported as exc:
                res.message = str(exc)
                continue
            except Exception as exc:
                res.status, res.candidate = "differs", f"raises {type(exc).__name__}"
                res.message = f"raises {_exc_text(exc)[:200]} where the spec returns"
                continue
            res.candidate = _describe([g for g in got if isinstance(g, np.ndarray)])
            problem = self._edge_problem(got, want, dtype, case, tol)
            if problem and self.reference is not self.backend:
                # the spec on the candidate's own backend, whose documented limits (JAX on a
                # CPU flushes subnormal results to zero) are the backend's, not the kernel's
                try:
                    own = self._spec(case, dtype)
                except Exception:
                    own = None
                if own is not None and not self._edge_problem(got, own, dtype, case, tol):
                    problem = ""
                    res.message = (f"as the spec computes it on {self.backend.id} (the "
                                   f"reference backend gives {_describe_short(want)})")
            res.status = "differs" if problem else "agrees"
            res.message = problem or res.message
            if problem.endswith(f"(tolerance {_fmt(tol)})"):
                self._referee(res, got, want, case, dtype)
        return out

    def _referee(self, res, got, want, case, dtype) -> None:
        """Finite values far from the spec's: where mpmath can say which is right, a
        candidate at least as close to it as the spec is not wrong (the spec is, there)."""
        oracle = oracles.ORACLES.get(self.name)
        if oracle is None:
            return
        low = dtype in LOW_DTYPES
        exact = _as_float32(case) if low else case
        try:
            truth = [np.asarray(w, dtype=np.float64) for w in _leaves(
                oracle(*exact.args, **{**exact.kwargs, **self.options}))]
        except Exception:
            return
        kwargs = {**case.kwargs, **self.options}
        c = self._ulps(got, truth, dtype, exact.args, kwargs, rounded=low)
        s = self._ulps(want, truth, dtype, exact.args, kwargs, rounded=low)
        if c <= s:
            res.status = "better"
            res.message = (f"the spec is {_fmt(s)} ulps from mpmath here, the candidate "
                           f"{_fmt(c)}: the candidate is right where the spec is not")
        else:
            res.message += f"; mpmath: candidate {_fmt(c)} ulps off, spec {_fmt(s)}"

    def _edge_problem(self, got, want, dtype, case, tol) -> str:
        if len(got) != len(want):
            return f"{len(got)} outputs where the spec gives {len(want)}"
        kwargs = {**case.kwargs, **self.options}
        for g, w in zip(got, want):
            g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
            if g.shape != w.shape:
                return f"shape {g.shape} where the spec gives {w.shape}"
            gn, wn = np.isnan(g), np.isnan(w)
            if np.any(gn & ~wn):
                there = w[gn & ~wn]
                what = "0" if not np.any(there) else "finite values"
                return (f"NaN in {int(np.sum(gn & ~wn))} of {g.size} entries where the spec "
                        f"gives {what}")
            if np.any(wn & ~gn):
                return (f"{int(np.sum(wn & ~gn))} entries finite where the spec gives NaN "
                        "(it propagates the NaN)")
            gi, wi = np.isinf(g), np.isinf(w)
            if np.any((gi | wi) & ~(gn | wn) & (g != w)):
                n = int(np.sum((gi | wi) & ~(gn | wn) & (g != w)))
                return f"±∞ differs from the spec in {n} of {g.size} entries"
        err = self._ulps(got, want, dtype, case.args, kwargs)
        if err > tol:
            return f"{_fmt(err)} ulps from the spec's result (tolerance {_fmt(tol)})"
        return ""


# ------------------------------------------------------------------ small helpers
class _Case:
    def __init__(self, args, kwargs, note=""):
        self.args, self.kwargs, self.note = args, kwargs, note


def _replace(case, **changes):
    return _Case(changes.get("args", case.args), changes.get("kwargs", case.kwargs), case.note)


def _as_float32(case):
    """The case at its exact inputs: low-precision arrays in float32 (precision.as_float32)."""
    return _Case(as_float32(case.args), as_float32(case.kwargs), getattr(case, "note", ""))


def _default(func, key):
    p = inspect.signature(func).parameters.get(key)
    return None if p is None else p.default


def _form_name(options: dict, default: bool = False) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return f"default ({text})" if default else text


def _fmt(x) -> str:
    if x is None:
        return "—"
    if math.isinf(x):
        return "∞"
    return f"{x:.3g}"

