"""The frameworks' own kernels, filed as `Native` records, and the command that checks them.

    python -m conformance.natives --out docs/results/natives          # every kernel, profile ci
    python -m conformance.natives --only torch.softmax,jax.nn.softmax --out /tmp/natives
    python -m conformance.natives --merge /tmp/torch /tmp/jax --out docs/results/natives

Each `Native` (conformance/records/__init__.py) names a library ('torch', 'jax', 'scipy'),
the name users know the kernel by, and an adapter that takes the library's module and returns
the kernel behind the spec's signature (`conformance.adapters`). The kernels are the ones the
benchmarks race (benchmarks/cases.py) plus SciPy's special functions and the exact-erf GELUs.
They are filed here, from one module, while the chapters' record files are being edited; each
`natives(...)` call can move into its chapter's `conformance/records/<chapter>.py` unchanged.

`FORMS` gives the form a kernel computes where the spec names several (jax.nn.gelu defaults to
the tanh approximation): it is checked as that form, and the card says which form it matched.

The command runs `conformance.check` on every kernel in float32, float64, float16 and bfloat16
where the library has the dtype (SciPy runs on NumPy arrays: no bfloat16), and writes
`natives.json` (every card), `natives.md` (the accuracy, edge-semantics and variant tables),
`cards/<kernel>.md` (each card) and `natives.png` (ulp error per kernel and dtype).
`--merge DIR ...` runs nothing: it joins the `natives.json` of runs made apart (say the JAX
kernels, which compile for every new shape, in a process of their own; a later folder's
kernel replaces an earlier one's) and writes the same files from them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from . import adapters as ad
from .records import Native, natives

__all__ = ["BACKEND", "FORMS", "all_natives", "check_one", "kernel", "main", "run"]

#: the backend whose arrays each library's kernels take
BACKEND = {"torch": "torch", "jax": "jax", "scipy": "numpy"}
DTYPES = ("float32", "float64", "float16", "bfloat16")


def _f(torch):
    return torch.nn.functional


def _special(scipy):
    return importlib.import_module("scipy.special")


def _jsp(jax):
    return importlib.import_module("jax.scipy.special")


# ------------------------------------------------------------------ probability
natives("softmax",
        Native("torch", "torch.softmax", lambda torch: ad.rowwise(torch.softmax)),
        Native("jax", "jax.nn.softmax", lambda jax: ad.rowwise(jax.nn.softmax, axis="axis")),
        Native("scipy", "scipy.special.softmax",
               lambda scipy: ad.rowwise(_special(scipy).softmax, axis="axis")))
natives("log_softmax",
        Native("torch", "torch.log_softmax", lambda torch: ad.rowwise(torch.log_softmax)),
        Native("jax", "jax.nn.log_softmax",
               lambda jax: ad.rowwise(jax.nn.log_softmax, axis="axis")),
        Native("scipy", "scipy.special.log_softmax",
               lambda scipy: ad.rowwise(_special(scipy).log_softmax, axis="axis")))
natives("logsumexp",
        Native("torch", "torch.logsumexp",
               lambda torch: ad.rowwise(torch.logsumexp, keepdims="keepdim")),
        Native("jax", "jax.nn.logsumexp",
               lambda jax: ad.rowwise(jax.nn.logsumexp, axis="axis", keepdims="keepdims")),
        Native("scipy", "scipy.special.logsumexp",
               lambda scipy: ad.rowwise(_special(scipy).logsumexp, axis="axis",
                                        keepdims="keepdims")))

# ------------------------------------------------------------------ losses
natives("softmax_cross_entropy",
        Native("torch", "F.cross_entropy", lambda torch: ad.cross_entropy(_f(torch).cross_entropy)))

# ------------------------------------------------------------------ activations
natives("sigmoid",
        Native("torch", "torch.sigmoid", lambda torch: ad.elementwise(torch.sigmoid)),
        Native("jax", "jax.nn.sigmoid", lambda jax: ad.elementwise(jax.nn.sigmoid)),
        Native("scipy", "scipy.special.expit",
               lambda scipy: ad.elementwise(_special(scipy).expit)))
natives("erf",
        Native("torch", "torch.special.erf", lambda torch: ad.elementwise(torch.special.erf)),
        Native("jax", "jax.scipy.special.erf", lambda jax: ad.elementwise(_jsp(jax).erf)),
        Native("scipy", "scipy.special.erf", lambda scipy: ad.elementwise(_special(scipy).erf)))
natives("silu",
        Native("torch", "F.silu",
               lambda torch: ad.elementwise(_f(torch).silu, beta=(None, 1.0))),
        Native("jax", "jax.nn.silu", lambda jax: ad.elementwise(jax.nn.silu, beta=(None, 1.0))))
natives("gelu",
        Native("torch", "F.gelu",
               lambda torch: ad.elementwise(_f(torch).gelu, approximate=("approximate", "none"))),
        Native("torch", "F.gelu(approximate='tanh')",
               lambda torch: ad.partial(_f(torch).gelu, approximate="tanh"),
               note="the tanh approximation, checked as that form"),
        Native("jax", "jax.nn.gelu", lambda jax: ad.elementwise(jax.nn.gelu),
               note="approximate=True (tanh) by default: checked as that form"),
        Native("jax", "jax.nn.gelu(approximate=False)",
               lambda jax: ad.jax_gelu(jax.nn.gelu)))

# ------------------------------------------------------------------ normalisation
natives("layer_norm",
        Native("torch", "F.layer_norm", lambda torch: ad.layer_norm(_f(torch).layer_norm)))
natives("rms_norm",
        Native("torch", "F.rms_norm", lambda torch: ad.rms_norm(_f(torch).rms_norm)
               if hasattr(_f(torch), "rms_norm") else None))

# ------------------------------------------------------------------ optimisation
natives("adam_step",
        Native("torch", "torch.optim.Adam",
               lambda torch: ad.torch_adam(torch.optim.Adam, foreach=False),
               note="the single-tensor loop (foreach=False)"),
        Native("torch", "torch.optim.Adam(fused=True)",
               lambda torch: ad.torch_adam(torch.optim.Adam, fused=True),
               note="the fused kernel"))

# ------------------------------------------------------------------ attention and layers
natives("scaled_dot_product_attention",
        Native("torch", "F.scaled_dot_product_attention",
               lambda torch: ad.torch_sdpa(_f(torch).scaled_dot_product_attention)),
        Native("jax", "jax.nn.dot_product_attention",
               lambda jax: ad.jax_sdpa(jax.nn.dot_product_attention)))
natives("multi_head_attention",
        Native("torch", "F.multi_head_attention_forward",
               lambda torch: ad.torch_mha(_f(torch).multi_head_attention_forward)))
natives("dense",
        Native("torch", "F.linear", lambda torch: ad.linear(_f(torch).linear)))

#: the spec's options of the form a kernel computes, where it is not the default form
FORMS: dict[str, dict] = {
    "F.gelu(approximate='tanh')": {"approximate": "tanh"},
    "jax.nn.gelu": {"approximate": "tanh"},
    # is_causal masks j > i (the top-left triangle) in both, whatever the lengths
    "F.scaled_dot_product_attention": {"causal_alignment": "upper_left"},
    "jax.nn.dot_product_attention": {"causal_alignment": "upper_left"},
}


def all_natives() -> list[tuple[str, Native]]:
    """(equation, native) for every filed kernel, in catalogue order."""
    from . import records

    return [(name, n) for name, rec in records.all_records().items() for n in rec.natives]


def kernel(native: Native):
    """The native's callable with the spec's signature (None where the library lacks it)."""
    module = importlib.import_module(native.library)
    return native.adapter(module)


def check_one(equation: str, native: Native, *, profile="ci", dtypes=DTYPES) -> dict:
    """One kernel's entry: what it is, and its card (or why it was skipped)."""
    from .check import check

    backend_id = BACKEND[native.library]
    entry = {"equation": equation, "library": native.library, "kernel": native.name,
             "backend": backend_id, "note": native.note}
    try:
        fn = kernel(native)
    except ImportError as exc:
        entry["skipped"] = f"{native.library} is not installed ({exc})"
        return entry
    if fn is None:
        entry["skipped"] = f"this {native.library} has no {native.name}"
        return entry
    import backends

    backend = backends.get(backend_id)
    wanted = tuple(d for d in dtypes if d in backend.float_dtypes)
    start = time.perf_counter()
    entry["card"] = check(fn, equation, backend=backend, dtypes=wanted, profile=profile,
                          options=FORMS.get(native.name), name=native.name)
    entry["seconds"] = round(time.perf_counter() - start, 1)
    return entry


def _check_by_name(job):
    """A worker's job: the kernel by its name (the records' adapters do not pickle)."""
    name, profile, dtypes = job
    equation, native = next((eq, n) for eq, n in all_natives() if n.name == name)
    return check_one(equation, native, profile=profile, dtypes=dtypes)


def _logged(entry, log) -> dict:
    verdict = ("skipped" if "card" not in entry else
               "pass" if entry["card"].passed else "FAIL")
    log(f"{entry['kernel']:<34} {entry['equation']:<30} {verdict} "
        f"({entry.get('seconds', 0):.1f} s)")
    return entry


def run(selected=None, *, profile="ci", dtypes=DTYPES, jobs=1, log=print,
        on_entry=None) -> list[dict]:
    """Check every (selected) native; returns one entry per kernel with its card, in
    catalogue order. `jobs` > 1 checks that many kernels at once, each in its own process
    (JAX's kernels, which compile for every new shape, first)."""
    chosen = [(eq, n) for eq, n in all_natives() if not selected or n.name in selected]
    names = [n.name for _, n in chosen]
    done: dict[str, dict] = {}

    def finished(entry):
        done[entry["kernel"]] = _logged(entry, log)
        if on_entry is not None:  # the entries so far, in catalogue order
            on_entry([done[name] for name in names if name in done], len(names))

    if jobs <= 1:
        for eq, n in chosen:
            finished(check_one(eq, n, profile=profile, dtypes=dtypes))
    else:
        import multiprocessing

        order = sorted(names, key=lambda name: not name.startswith("jax"))
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for entry in pool.imap_unordered(
                    _check_by_name, [(name, profile, tuple(dtypes)) for name in order]):
                finished(entry)
    return [done[name] for name in names]


# ------------------------------------------------------------------ writing the results
def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    return "-".join(part for part in keep.split("-") if part)


def _ulp(x) -> str:
    from .checker.card import _num

    return _num(x)


def markdown(entries: list[dict], meta: dict) -> str:
    lines = ["# The frameworks' own kernels, checked against the spec", "",
             f"`python -m conformance.natives` on {meta['when']}, Hypothesis profile "
             f"`{meta['profile']}`; {meta['versions']}. Each kernel's full card is in "
             "`cards/`, linked from its name.", ""]
    if meta.get("partial"):
        lines += [f"**Partial results: {meta['partial']}.**", ""]
    lines += ["## Verdicts", "", "| kernel | equation | form | result | diagnosis |",
              "|---|---|---|---|---|"]
    for e in entries:
        if "card" not in e:
            lines.append(f"| {e['kernel']} | {e['equation']} | — | ⏭ skipped | {e['skipped']} |")
            continue
        card = e["card"]
        verdict = "✅ passed" if card.passed else "❌ failed"
        diag = "; ".join(card.diagnoses()[:3]).replace("|", "\\|")
        lines.append(f"| [{e['kernel']}](cards/{_slug(e['kernel'])}.md) | {e['equation']} | "
                     f"{_form(card)} | {verdict} | {diag} |")
    lines += ["", "## Accuracy: worst error in ulps against mpmath (kernel / spec)", "",
              "Over the records' sample and reference inputs and rows of 1024; the kernel "
              "passes at ≤ k × the spec's error + 1 ulp (k = 2).", "",
              "| kernel | " + " | ".join(DTYPES) + " |", "|---" * (len(DTYPES) + 1) + "|"]
    for e in entries:
        if "card" not in e:
            continue
        acc = {a.dtype: a for a in e["card"].accuracy}
        cells = []
        for d in DTYPES:
            a = acc.get(d)
            if a is None:
                cells.append("—")
            elif a.status == "n/a":
                cells.append("n/a")
            else:
                mark = "" if a.status == "passed" else " ❌"
                cells.append(f"{_ulp(a.candidate_ulp)} / {_ulp(a.spec_ulp)}{mark}")
        lines.append(f"| {e['kernel']} | " + " | ".join(cells) + " |")
    lines += ["", "## Edge semantics (float32) where a kernel and the spec disagree", "",
              "| kernel | input | kernel gives | spec gives |", "|---|---|---|---|"]
    for e in entries:
        if "card" not in e:
            continue
        for edge in e["card"].edges:
            if edge.dtype == "float32" and edge.status == "differs":
                lines.append(f"| {e['kernel']} | {edge.case} | {edge.candidate} — "
                             f"{edge.message} | {edge.spec} |".replace("\n", " "))
    lines += ["", "## Properties", "", "| kernel | held | broken | n/a or skipped |",
              "|---|---|---|---|"]
    for e in entries:
        if "card" not in e:
            continue
        ps = e["card"].properties
        broken = [f"{p.name} ({p.dtype})" for p in ps if p.status == "broken"]
        lines.append(f"| {e['kernel']} | {sum(p.status == 'held' for p in ps)} | "
                     f"{', '.join(broken) or 0} | "
                     f"{sum(p.status in ('n/a', 'skipped') for p in ps)} |")
    return "\n".join(lines) + "\n"


def _form(card) -> str:
    v = card.variant
    if v is None or v.matched is None:
        return "—"
    return v.matched if v.status != "mismatch" else f"{v.matched} ≠ {v.expected}"


def plot(entries: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [e for e in entries if "card" in e]
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(rows) + 2), 5))
    width = 0.2
    colours = {"float32": "tab:blue", "float64": "tab:green", "float16": "tab:orange",
               "bfloat16": "tab:red"}
    for j, d in enumerate(DTYPES):
        xs, ys, spec_y = [], [], []
        for i, e in enumerate(rows):
            a = next((a for a in e["card"].accuracy if a.dtype == d), None)
            if a is None or a.candidate_ulp is None:
                continue
            xs.append(i + (j - 1.5) * width)
            ys.append(min(max(a.candidate_ulp, 0.05), 1e6))
            spec_y.append(min(max(a.spec_ulp, 0.05), 1e6))
        ax.bar(xs, ys, width, label=f"{d} kernel", color=colours[d], alpha=0.8)
        ax.scatter(xs, spec_y, marker="_", s=120, color="black", zorder=3,
                   label="the spec, same dtype" if j == 0 else None)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(rows)))
    ax.set_xticklabels([e["kernel"] for e in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("worst error against mpmath (ulps of the dtype)")
    ax.set_title("The frameworks' kernels: ulp error per kernel and dtype (capped at 1e6)")
    ax.legend(fontsize=8, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(entries: list[dict], out: Path, profile: str, total: int | None = None) -> list[Path]:
    import datetime
    import platform

    import numpy

    out.mkdir(parents=True, exist_ok=True)
    (out / "cards").mkdir(exist_ok=True)
    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    for lib in ("torch", "jax", "scipy"):
        try:
            versions[lib] = importlib.import_module(lib).__version__
        except ImportError:
            pass
    meta = {"when": datetime.date.today().isoformat(), "profile": profile,
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items())}
    if total is not None and total > len(entries):
        meta["partial"] = f"{len(entries)} of {total} kernels (the run did not finish)"
    written = []
    for e in entries:
        if "card" in e:
            path = out / "cards" / f"{_slug(e['kernel'])}.md"
            path.write_text(e["card"].to_markdown() + "\n", encoding="utf-8")
    data = {"meta": {**meta, "versions": versions},
            "kernels": [{k: (v.to_dict() if k == "card" else v) for k, v in e.items()}
                        for e in entries]}
    path = out / "natives.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)
    path = out / "natives.md"
    path.write_text(markdown(entries, meta), encoding="utf-8")
    written.append(path)
    path = out / "natives.png"
    plot(entries, path)
    written.append(path)
    return written


def load(folder: Path) -> list[dict]:
    """The entries of a run's natives.json, with their cards rebuilt."""
    from .checker.card import Card

    data = json.loads((Path(folder) / "natives.json").read_text(encoding="utf-8"))
    return [{**e, "card": Card.from_dict(e["card"])} if "card" in e else e
            for e in data["kernels"]]


def merged(folders) -> tuple[list[dict], str]:
    """The entries of several runs in catalogue order (a later folder's kernel replaces an
    earlier one's), and the Hypothesis profile they ran at."""
    found: dict[str, dict] = {}
    profiles = set()
    for folder in folders:
        meta = json.loads((Path(folder) / "natives.json").read_text(encoding="utf-8"))["meta"]
        profiles.add(meta["profile"])
        for e in load(folder):
            found[e["kernel"]] = e
    order = [n.name for _, n in all_natives()]
    entries = [found[name] for name in order if name in found]
    entries += [e for name, e in found.items() if name not in order]
    return entries, " and ".join(sorted(profiles))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.natives",
                                description="Check the frameworks' own kernels against the "
                                "spec and write the results.")
    p.add_argument("--out", type=Path, default=Path("docs/results/natives"))
    p.add_argument("--profile", default="ci", choices=("quick", "ci", "dev", "thorough"))
    p.add_argument("--only", default="", help="comma-separated kernel names")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--jobs", type=int, default=1, help="kernels checked at once (processes)")
    p.add_argument("--merge", nargs="+", type=Path, metavar="DIR",
                   help="check nothing: join these runs' natives.json and write the results")
    args = p.parse_args(argv)
    if args.merge:
        entries, profile = merged(args.merge)
        written = write(entries, args.out, profile, total=len(all_natives()))
        print(f"written: {', '.join(map(str, written))} ({len(entries)} kernels)")
        return 0
    selected = {s.strip() for s in args.only.split(",") if s.strip()}
    known = {n.name for _, n in all_natives()}
    if selected - known:
        p.error(f"--only: no kernel {', '.join(sorted(selected - known))}")
    start = time.perf_counter()

    def partial(entries, total):  # a run cut short still leaves the kernels it checked
        if len(entries) < total:
            write(entries, args.out, args.profile, total=total)

    entries = run(selected, profile=args.profile, dtypes=tuple(args.dtypes.split(",")),
                  jobs=args.jobs, on_entry=partial)
    written = write(entries, args.out, args.profile)
    failed = [e["kernel"] for e in entries if "card" in e and not e["card"].passed]
    print(f"written: {', '.join(map(str, written))} ({time.perf_counter() - start:.0f} s); "
          f"{len(failed)} of {len(entries)} kernels differ from the spec somewhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
