"""Worst ulp error per equation in bfloat16 and float16 against mpmath: the spec's, and the
backend library's own kernels' beside it.

    python -m conformance.low_precision_table --backend torch \
        --out docs/results/conformance/low-precision
    python -m conformance.low_precision_table --backend torch --only softmax,gelu --out /tmp/low

For every equation of tier R that declares float16 or bfloat16, and each of those dtypes the
backend has, it measures what `test_reference_accuracy_low_precision` (conformance/test_tiers.py)
asserts: the spec runs on the backend over tier R's cases (the records' sample and reference
inputs rounded to the dtype), the mpmath oracle runs at the same, exact, inputs (in float32,
which holds every float16 and bfloat16 value), and the error is in ulps of the dtype from the
correctly rounded oracle value, with tier R's floors (`oracles.scale_floor`). It keeps the worst
error, the case where it occurred, and the budget (`records.ulp_budget`).

The library's own kernels of the equation (`conformance.natives`: torch's for the torch backend,
SciPy's for NumPy, JAX's for JAX) run on the same cases in the same dtype and are measured the
same way, against the same oracle values. A kernel is called as the checker calls it
(`conformance.checker.Bound`): it computes one form of the equation (`natives.FORMS`, else the
spec's default form), so a case asking for another form, or for an option the kernel lacks, is
left out with the reason, and so is a case on which the kernel raises; those are not failures.
A kernel is not held to the spec's budget: the table shows its error beside the spec's.

It writes `low-precision.json` (every number, the cases left out, versions, date and commit)
and `low-precision.md` (the table), and exits 1 where the spec exceeds its budget.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import backends
import spec

from . import natives, oracles, records
from .adapters import Unsupported
from .checker import Bound
from .checker.card import _num  # three significant digits, ∞, — (as the report cards)
from .helpers import kwargs_on, limit_reason, tier_cases, to_backend
from .precision import as_float32, round_to
from .settings import LOW_DTYPES

__all__ = ["equations", "kernels_of", "main", "markdown", "measure", "over_budget", "run",
           "write"]

#: the dtypes of the table, in its column order
DTYPES = ("bfloat16", "float16")
#: the library whose kernels sit beside each backend's spec (conformance.natives.BACKEND)
LIBRARY = {backend: library for library, backend in natives.BACKEND.items()}


def equations(names=None) -> list[str]:
    """The equations of tier R that declare float16 or bfloat16 (of `names`, if given), in
    catalogue order."""
    return [name for name, rec in spec.catalogue().items()
            if "R" in rec.tiers and any(d in rec.dtypes for d in LOW_DTYPES)
            and (not names or name in names)]


def kernels_of(name: str, backend) -> list[tuple[str, object]]:
    """(kernel name, callable with the spec's signature, or the reason there is none) for each
    of the backend library's kernels of `name`, each bound to the form it computes."""
    library = LIBRARY.get(backend.id.split(":")[0])
    rec = spec.catalogue()[name]
    variant_options = {k for v in rec.variants for k in v.options}
    out = []
    for native in records.get(name).natives:
        if native.library != library:
            continue
        try:
            fn = natives.kernel(native)
        except ImportError as exc:
            out.append((native.name, f"{library} is not installed ({exc})"))
            continue
        if fn is None:
            out.append((native.name, f"this {library} has no {native.name}"))
            continue
        form = natives.FORMS.get(native.name, {})
        out.append((native.name, Bound(fn, form, rec.func, implicit=variant_options - set(form))))
    return out


def _worst() -> dict:
    """An empty tally of one implementation's errors (see `measure`)."""
    return {"ulp": 0.0, "case": None, "ran": 0, "left_out": [], "returned": []}


def _record(worst: dict, err: float, note: str, got=None) -> None:
    """Count one case's error `err` (and the dtype of the result `got`) in the tally."""
    worst["ran"] += 1
    if err > worst["ulp"] or worst["case"] is None:
        worst["ulp"], worst["case"] = err, note
    dtype = None if got is None else np.asarray(got).dtype.name
    if dtype is not None and dtype not in worst["returned"]:
        worst["returned"].append(dtype)


def measure(name: str, dtype: str, backend) -> dict:
    """The spec's and the kernels' worst error in `dtype` over tier R's cases of `name`:
    {"budget", "cases", "spec": worst, "kernels": {kernel: worst or {"skipped": reason}}}, each
    worst being {"ulp", "case" (where the worst error is), "ran" (cases), "left_out":
    [{"case", "reason"}], "returned": [the dtypes of its results]}."""
    rec = spec.catalogue()[name]
    spec_worst = _worst()
    kernels = kernels_of(name, backend)
    kernel_worst = {k: _worst() if callable(fn) else {"skipped": fn} for k, fn in kernels}
    cases = tier_cases(name, dtype)
    for case in cases:
        args, kwargs = as_float32(list(case.args)), as_float32(case.kwargs)
        want = oracles.ORACLES[name](*args, **kwargs)
        rounded = round_to(want, dtype)
        floor = oracles.scale_floor(name, want, args, kwargs)
        if reason := limit_reason(rec, backend, "R", case):
            spec_worst["left_out"].append({"case": case.note, "reason": reason})
        else:
            try:
                got = _call(rec.func, case, backend)
                _record(spec_worst, _ulps(got, rounded, dtype, floor), case.note, got)
            except Exception as exc:  # the spec raising on a case of its own records fails
                _record(spec_worst, math.inf, f"{case.note} (raises {_text(exc)})")
        for k, fn in kernels:
            if not callable(fn):
                continue
            try:
                got = _call(fn, case, backend)
            except Exception as exc:  # an option or form it lacks, or it raised
                reason = str(exc) if isinstance(exc, Unsupported) else f"raises {_text(exc)}"
                kernel_worst[k]["left_out"].append({"case": case.note, "reason": reason})
                continue
            _record(kernel_worst[k], _ulps(got, rounded, dtype, floor), case.note, got)
    return {"budget": float(records.ulp_budget(name, dtype)), "cases": len(cases),
            "spec": spec_worst, "kernels": kernel_worst}


def _call(fn, case, backend) -> np.ndarray:
    """`fn` on the case's arguments, moved to the backend as tier R moves them; the result on
    the host."""
    args = [to_backend(backend, a) for a in case.args]
    return backend.to_numpy(fn(*args, **kwargs_on(backend, case.kwargs)))


def _ulps(got, rounded, dtype: str, floor) -> float:
    """The worst error of `got` in ulps of `dtype` from the correctly rounded oracle value."""
    err = oracles.ulp_error(got, rounded, dtype, floor=floor)
    return float(np.max(err)) if err.size else 0.0


def _text(exc: BaseException) -> str:
    """The exception in one line."""
    line = next((s for s in str(exc).splitlines() if s.strip()), "")
    return f"{type(exc).__name__}: {line[:200]}" if line else type(exc).__name__


def run(backend, names=None, dtypes=DTYPES, log=print) -> list[dict]:
    """One entry per equation: {"equation", "dtypes": {dtype: measure(...) or {"skipped"}}}."""
    backend.prepare_for_conformance()
    out = []
    for name in equations(names):
        rec = spec.catalogue()[name]
        entry = {"equation": name, "dtypes": {}}
        start = time.perf_counter()
        for dtype in dtypes:
            if dtype not in rec.dtypes:
                entry["dtypes"][dtype] = {"skipped": f"{name} does not declare {dtype}"}
            elif dtype not in backend.float_dtypes:
                entry["dtypes"][dtype] = {"skipped": f"backend {backend.id} has no {dtype}"}
            else:
                with np.errstate(all="ignore"):
                    entry["dtypes"][dtype] = measure(name, dtype, backend)
        log(f"{name:<36} " + "  ".join(
            f"{d} {_num(m['spec']['ulp'])}/{_num(m['budget'])}"
            for d, m in entry["dtypes"].items() if "spec" in m)
            + f" ({time.perf_counter() - start:.1f} s)")
        out.append(entry)
    return out


def over_budget(entries: list[dict]) -> list[str]:
    """'equation dtype: worst ulp > budget [case]' wherever the spec exceeds its budget."""
    return [f"{e['equation']} {d}: {_num(m['spec']['ulp'])} ulp > {_num(m['budget'])} "
            f"[{m['spec']['case']}]"
            for e in entries for d, m in e["dtypes"].items()
            if "spec" in m and m["spec"]["ulp"] > m["budget"]]


# ------------------------------------------------------------------ writing the results
def _kernel_cell(m: dict, kernel: str | None) -> str:
    """A kernel's worst error, with the share of the cases it took where it did not take all."""
    if kernel is None:
        return "—"
    k = m["kernels"][kernel]
    if "skipped" in k:
        return "n/a"
    if not k["ran"]:
        return "not run"
    return _num(k["ulp"]) + (f" ({k['ran']}/{m['cases']})" if k["ran"] < m["cases"] else "")


def _left_out(w: dict) -> str:
    """The cases left out, grouped by reason: 'reason (case; case)'."""
    by_reason: dict[str, list[str]] = {}
    for item in w["left_out"]:
        by_reason.setdefault(item["reason"], []).append(item["case"])
    return "; ".join(f"{reason} ({'; '.join(cases)})" for reason, cases in by_reason.items())


def markdown(entries: list[dict], meta: dict) -> str:
    """The table (one row per equation and kernel), where the kernels' error exceeds the
    spec's budget, and the cases left out."""
    library, dtypes = meta["library"], meta["dtypes"]
    head = ["equation", f"{library} kernel"]
    for d in dtypes:
        head += [f"{d} spec", f"{d} kernel", f"{d} budget"]
    lines = [
        f"# Low precision: worst ulp error against mpmath, the spec and {library}'s kernels", "",
        f"The spec on the `{meta['backend']}` backend and {library}'s own kernel of the same "
        "equation, in each low precision, over the records' cases of tier R (their sample and "
        "reference inputs rounded to the dtype). The error is in ulps of the dtype, measured "
        "from the correctly rounded mpmath value at the exact low-precision inputs, with tier "
        "R's floors (`conformance.oracles.scale_floor`); each cell is the worst over the cases "
        "(∞: a NaN or ∞ where the value is finite, or the reverse). The budget is tier R's "
        "(`records.ulp_budget`) and holds the spec only; a kernel is shown beside it, on the "
        "cases it takes (k/n where it took k of the n: the others ask for a form or an option "
        f"it lacks, see below). —: {library} has no kernel for the equation.", "",
        f"`{meta['command']}` on {meta['date']}, commit `{meta['commit']}`; "
        f"{', '.join(f'{k} {v}' for k, v in meta['versions'].items())}; {meta['seconds']:.0f} s.",
        ""]
    bad = over_budget(entries)
    lines += [f"**The spec exceeds its budget:** {'; '.join(bad)}."
              if bad else "The spec is within its budget everywhere.", ""]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for e in entries:
        kernels = [k for k in _order(e) if any(k in m.get("kernels", {})
                                               for m in e["dtypes"].values())]
        for kernel in kernels or [None]:
            row = [e["equation"], kernel or "—"]
            for d in dtypes:
                m = e["dtypes"][d]
                if "skipped" in m:
                    row += ["n/a"] * 3
                    continue
                over = " ❌" if m["spec"]["ulp"] > m["budget"] else ""
                row += [_num(m["spec"]["ulp"]) + over, _kernel_cell(m, kernel),
                        _num(m["budget"])]
            lines.append("| " + " | ".join(row) + " |")
    above = [f"- {k}, {d}: {_num(w['ulp'])} ulp (budget {_num(m['budget'])}) at “{w['case']}”"
             for e in entries for d, m in e["dtypes"].items()
             for k, w in m.get("kernels", {}).items() if w.get("ran") and w["ulp"] > m["budget"]]
    lines += ["", f"## Where a {library} kernel's error exceeds the spec's budget", "",
              *(above or ["Nowhere."])]
    other = [f"- {k}, {d}: returns {', '.join(w['returned'])}" for e in entries
             for d, m in e["dtypes"].items() for k, w in m.get("kernels", {}).items()
             if set(w.get("returned", [d])) - {d}]
    if other:
        lines += ["", "## Kernels whose results are not in the dtype of their inputs", "",
                  *other]
    lines += ["", "## Cases left out, and why", ""]
    for e in entries:
        said: dict[tuple[str, str], list[str]] = {}  # (who, what) -> dtypes, to say it once
        for d, m in e["dtypes"].items():
            if "skipped" in m:
                said.setdefault(("the spec", m["skipped"]), []).append(d)
                continue
            for who, w in [("the spec", m["spec"]), *m["kernels"].items()]:
                what = w.get("skipped") or (w["left_out"] and
                                            f"ran {w['ran']} of {m['cases']}; {_left_out(w)}")
                if what:
                    said.setdefault((who, what), []).append(d)
        lines += [f"- {e['equation']}, {who} ({' and '.join(ds)}): {what}".replace("\n", " ")
                  for (who, what), ds in said.items()]
    return "\n".join(lines) + "\n"


def _order(entry: dict) -> list[str]:
    """The names of the equation's kernels, in the order they are filed."""
    return [n.name for n in records.get(entry["equation"]).natives]


def _version(module: str) -> str:
    """An installed module's version."""
    return getattr(importlib.import_module(module), "__version__", "?")


def _commit() -> str:
    """The checkout's short commit hash ("unknown" outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write(entries: list[dict], out: Path, meta: dict) -> list[Path]:
    """low-precision.json and low-precision.md in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "low-precision.json", out / "low-precision.md"
    data = {"meta": meta, "over_budget": over_budget(entries), "equations": entries}
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False,
                                    default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(entries, meta), encoding="utf-8")
    return [json_path, md_path]


def main(argv=None) -> int:
    """The command: measure, write, and exit 1 where the spec exceeds its budget."""
    p = argparse.ArgumentParser(prog="python -m conformance.low_precision_table",
                                description="Worst ulp error per equation in bfloat16 and "
                                "float16 against mpmath: the spec and the library's kernels.")
    p.add_argument("--backend", default="torch")
    p.add_argument("--out", type=Path, default=Path("docs/results/conformance/low-precision"))
    p.add_argument("--only", default="", help="comma-separated equation names")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    args = p.parse_args(argv)
    names = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = names - set(equations())
    if unknown:
        p.error(f"--only: no equation of tier R in a low precision: {', '.join(sorted(unknown))}")
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    if set(dtypes) - set(DTYPES):
        p.error(f"--dtypes: one or both of {', '.join(DTYPES)}")
    try:
        backend = backends.get(args.backend)
    except (ValueError, backends.BackendUnavailable) as exc:
        p.error(str(exc))
    start = time.perf_counter()
    entries = run(backend, names, dtypes)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m conformance.low_precision_table", *given])
    meta = {"backend": backend.id, "library": LIBRARY.get(backend.id.split(":")[0], "—"),
            "dtypes": list(dtypes), "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _commit(), "versions": {**backend.versions(), "mpmath": _version("mpmath")},
            "seconds": round(time.perf_counter() - start, 1)}
    written = write(entries, args.out, meta)
    bad = over_budget(entries)
    print(f"written: {', '.join(map(str, written))} ({meta['seconds']:.0f} s); "
          + (f"over budget: {'; '.join(bad)}" if bad else "the spec is within budget everywhere"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
