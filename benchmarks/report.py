"""Turn a pytest-benchmark JSON file into the results page: Markdown tables and PNG plots.

The page answers, per equation: how long one call takes on each backend and mode, how close
that is to the hardware's roofline measured in the same run, where the GPU starts to beat the
CPU (the crossover size) and by how much it wins at the largest size, and whether the
compiled spec keeps up with the framework's own kernel. It states the issue's targets as met
or missed with the measured numbers; it never hides a missing backend (its reason is listed).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

MODES = ("eager", "compiled", "native")


@dataclass(frozen=True)
class Row:
    case: str
    backend: str
    gpu: bool
    device: str
    mode: str
    precision: str
    elements: int
    shape: str
    median: float
    gb_per_s: float
    tflop_per_s: float
    fraction: float
    limited_by: str
    copy_gb_per_s: float
    matmul_tflops: float
    #: the bandwidth measured at this row's byte count (the size-matched roofline)
    matched_gb_per_s: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.backend} · {self.mode}"


def load(path: Path) -> tuple[list[Row], dict]:
    """The rows of a pytest-benchmark JSON file, and its machine/commit information."""
    data = json.loads(Path(path).read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "case" not in info:
            continue
        roof = info["roofline"]
        rows.append(Row(
            info["case"], info["backend"], bool(info["gpu"]), info["device"], info["mode"],
            info["precision"], int(info["elements"]), info["shape"],
            float(bench["stats"]["median"]), float(info["gb_per_s"]),
            float(info["tflop_per_s"]), float(info["roofline_fraction"]), info["limited_by"],
            float(roof["copy_gb_per_s"]), float(roof["matmul_tflops"]),
            float(roof.get("matched_gb_per_s", roof["copy_gb_per_s"]))))
    meta = {k: data.get(k) for k in ("machine_info", "commit_info", "datetime", "version",
                                     "budget", "session")}
    return with_demonstrated_peaks(rows), meta


#: floating precisions, narrowest first: a library may compute a product in a wider one
_WIDTH = ("float16", "bfloat16", "float32", "float64")


def with_demonstrated_peaks(rows: list[Row]) -> list[Row]:
    """The rows with their matmul peak raised to the fastest matmul rate the run saw on the
    same device in the same or a wider precision, and their fraction of the roofline
    recomputed against it.

    The peak is first probed with a few square products timed briefly; a library's own
    kernel can go faster at other shapes (on the 2-core VM torch's float32 `F.linear` reached
    101 % of the probed peak), and a narrow precision the CPU has no arithmetic for is probed
    at a fraction of the rate its products reach through float32 (torch's bfloat16 square
    product at 2048: under 0.01 TFLOP/s, where its bfloat16 `dense` did 30 times as many).
    So the peak of a device and precision is the best of: its probe, a compute-bound row's
    own rate, and the same for every wider precision (a narrow product can always be computed
    in a wider one). A row above 100 % then moves fewer bytes than the cost model counts.
    The row's memory term (bytes at the size-matched bandwidth) is unchanged."""
    from .cases import CASES

    seen: dict[tuple[str, str, str], float] = defaultdict(float)
    for r in rows:
        rate = r.tflop_per_s if r.case in CASES and CASES[r.case].bound == "compute" else 0.0
        key = (r.backend, r.device, r.precision)
        seen[key] = max(seen[key], r.matmul_tflops, rate)

    def peak(r: Row) -> float:
        wider = _WIDTH[_WIDTH.index(r.precision):] if r.precision in _WIDTH else (r.precision,)
        return max(seen.get((r.backend, r.device, p), 0.0) for p in wider)

    out = []
    for r in rows:
        tflops = peak(r)
        if r.case in CASES and CASES[r.case].bound == "compute" and r.median > 0:
            nbytes = r.gb_per_s * r.median * 1e9
            flops = r.tflop_per_s * r.median * 1e12
            bound = max(nbytes / (r.matched_gb_per_s * 1e9) if r.matched_gb_per_s else 0.0,
                        flops / (tflops * 1e12))
            r = dataclasses.replace(r, fraction=bound / r.median)
        out.append(dataclasses.replace(r, matmul_tflops=tflops))
    return out


# ----------------------------------------------------------------------------- formatting
def seconds(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def pow2(n: int) -> str:
    k = n.bit_length() - 1
    return f"2^{k}" if n == 1 << k else f"{n:,}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# ----------------------------------------------------------------------------- analysis
def index(rows: list[Row]) -> dict:
    """(case, precision, elements) → {label: Row}."""
    out: dict = defaultdict(dict)
    for r in rows:
        out[(r.case, r.precision, r.elements)][r.label] = r
    return out


def best(cell: dict, *, gpu: bool, modes=MODES) -> Row | None:
    candidates = [r for r in cell.values() if r.gpu == gpu and r.mode in modes]
    return min(candidates, key=lambda r: r.median) if candidates else None


def crossover(rows_by_size: dict[int, dict]) -> int | None:
    """The smallest size from which the best GPU time beats the best CPU time at every size."""
    won = None
    for n in sorted(rows_by_size, reverse=True):
        cpu, gpu = best(rows_by_size[n], gpu=False), best(rows_by_size[n], gpu=True)
        if cpu is None or gpu is None or gpu.median >= cpu.median:
            break
        won = n
    return won


def _cases_in_order(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.setdefault(r.case)
    return list(seen)


def headline(rows: list[Row], precision: str) -> list[str]:
    """One row per equation at its largest measured size."""
    cells = index(rows)
    lines = []
    for case in _cases_in_order(rows):
        sizes = {n: cells[(c, p, n)] for (c, p, n) in cells if c == case and p == precision}
        if not sizes:
            continue
        n = max(sizes)
        cell = sizes[n]
        cpu, gpu = best(cell, gpu=False), best(cell, gpu=True)
        comp = best(cell, gpu=True, modes=("compiled",))
        nat = best(cell, gpu=True, modes=("native",))
        cross = crossover(sizes)
        lines.append([
            f"`{case}`", pow2(n),
            f"{seconds(cpu.median)} ({cpu.label})" if cpu else "—",
            f"{seconds(gpu.median)} ({gpu.label})" if gpu else "—",
            f"**{cpu.median / gpu.median:.1f}×**" if cpu and gpu else "—",
            pow2(cross) if cross else "—",
            f"{nat.median / comp.median:.2f}×" if comp and nat else "—",
            f"{100 * gpu.fraction:.0f} % ({gpu.limited_by})" if gpu
            else f"{100 * cpu.fraction:.0f} % ({cpu.limited_by})" if cpu else "—",
        ])
    return _table(["equation", "size", "best CPU", "best GPU", "GPU/CPU", "GPU wins from",
                   "compiled vs native (GPU)", "best % of roofline"], lines)


def detail(rows: list[Row], case: str, precision: str) -> list[str]:
    mine = [r for r in rows if r.case == case and r.precision == precision]
    if not mine:
        return []
    sizes = sorted({r.elements for r in mine})
    labels = sorted({r.label for r in mine},
                    key=lambda s: (s.split(" · ")[0], MODES.index(s.split(" · ")[1])))
    by = {(r.label, r.elements): r for r in mine}
    body = []
    for label in labels:
        cells = []
        for n in sizes:
            r = by.get((label, n))
            cells.append(f"{seconds(r.median)} · {r.gb_per_s:.1f} GB/s · "
                         f"{100 * r.fraction:.0f} %" if r else "")
        body.append([label, *cells])
    cell_index = index(mine)
    speed = []
    for n in sizes:
        cpu = best(cell_index[(case, precision, n)], gpu=False)
        gpu = best(cell_index[(case, precision, n)], gpu=True)
        speed.append(f"{cpu.median / gpu.median:.1f}×" if cpu and gpu else "")
    if any(speed):
        body.append(["**GPU/CPU (best/best)**", *speed])
    shapes = {n: next(r.shape for r in mine if r.elements == n) for n in sizes}
    header = ["backend · mode", *[f"{pow2(n)} ({shapes[n]})" for n in sizes]]
    return _table(header, body)


GPU_TARGETS = [
    # (description, cases, check)
    ("compiled ≥ 1.0× native speed (native time / compiled time) at the decisive size",
     ("softmax", "log_softmax", "layer_norm", "rms_norm", "softmax_cross_entropy", "gelu",
      "adam_step"), "compiled_vs_native"),
    ("compiled ≥ 80 % of the size-matched bandwidth at the decisive size",
     ("softmax", "log_softmax", "layer_norm", "rms_norm", "softmax_cross_entropy", "gelu",
      "adam_step"), "compiled_bandwidth"),
    ("eager ≥ 30 % of the size-matched bandwidth at the decisive size",
     ("softmax", "log_softmax", "logsumexp", "softmax_cross_entropy", "gelu", "silu",
      "layer_norm", "rms_norm", "rope", "adam_step"), "eager_bandwidth"),
]
TARGETS = GPU_TARGETS  # the name earlier pages and tests use
#: CPU targets: compiled time ≤ 1.25 × native time for these families
CPU_COMPILED_FAMILIES = ("softmax", "log_softmax", "logsumexp", "softmax_cross_entropy",
                         "layer_norm", "rms_norm", "silu", "gelu")
#: the size that decides the targets: 2²² elements on a CPU, 2²⁶ on a GPU (above its L2)
DECISIVE = {False: 2**22, True: 2**26}


def decisive(sizes, gpu: bool) -> int | None:
    """The size the targets are judged at: the decisive size if measured, else the largest."""
    sizes = sorted(set(sizes))
    if not sizes:
        return None
    return DECISIVE[gpu] if DECISIVE[gpu] in sizes else sizes[-1]


def _by_label(rows: list[Row], case: str, precision: str, gpu: bool):
    """(size, {label: Row}) of `case` at its decisive size on GPU or CPU backends."""
    mine = [r for r in rows if r.case == case and r.precision == precision and r.gpu == gpu]
    n = decisive([r.elements for r in mine], gpu)
    return n, {r.label: r for r in mine if r.elements == n}


def ratios(rows: list[Row], precision: str, *, gpu: bool) -> list[str]:
    """The headline of a run: per equation and backend, eager and compiled time over the
    framework's own kernel's, and each mode's fraction of the size-matched roofline."""
    body = []
    for case in _cases_in_order(rows):
        n, cell = _by_label(rows, case, precision, gpu)
        for backend in sorted({r.backend for r in cell.values()}):
            eager, comp, nat = (cell.get(f"{backend} · {m}") for m in MODES)
            body.append([
                f"`{case}`", pow2(n) if n else "—", backend,
                f"{eager.median / nat.median:.2f}×" if eager and nat else "—",
                f"{comp.median / nat.median:.2f}×" if comp and nat else "—",
                *[f"{100 * r.fraction:.0f} %" if r else "—" for r in (eager, comp, nat)],
            ])
    return _table(["equation", "size", "backend", "eager / native", "compiled / native",
                   "eager % roofline", "compiled % roofline", "native % roofline"], body)


def above_roofline(rows: list[Row], limit: float = 1.0) -> list[Row]:
    """Rows faster than the size-matched roofline allows: a broken measurement, or a kernel
    that moves fewer bytes (does fewer FLOPs) than the cost model says."""
    return [r for r in rows if r.fraction > limit]


def _verdict(value: float, goal: float, *, at_most: bool = False) -> str:
    ok = value <= goal if at_most else value >= goal
    return "met" if ok else "missed"


def cpu_targets(rows: list[Row]) -> list[str]:
    """The project's CPU targets, each with the measured value: met or missed."""
    body = []
    for case in CPU_COMPILED_FAMILIES:
        n, cell = _by_label(rows, case, "float32", False)
        for backend in sorted({r.backend for r in cell.values()}):
            comp, nat = cell.get(f"{backend} · compiled"), cell.get(f"{backend} · native")
            if comp and nat:
                value = comp.median / nat.median
                body.append([f"`{case}`", backend, pow2(n), "compiled / native ≤ 1.25×",
                             f"{value:.2f}×", _verdict(value, 1.25, at_most=True)])
    n, cell = _by_label(rows, "gelu", "float32", False)
    eager, nat = cell.get("torch · eager"), cell.get("torch · native")
    if eager and nat:
        value = eager.median / nat.median
        body.append(["`gelu` (exact)", "torch", pow2(n), "eager / native ≤ 3×",
                     f"{value:.2f}×", _verdict(value, 3.0, at_most=True)])
    cpu = [r for r in rows if not r.gpu]
    worst = max(cpu, key=lambda r: r.fraction, default=None)
    if worst is not None:
        body.append(["every row", "all CPU", "all", "no row above 100 % of the roofline",
                     f"highest {100 * worst.fraction:.0f} % ({worst.case}, {worst.label}, "
                     f"{pow2(worst.elements)})", _verdict(worst.fraction, 1.0, at_most=True)])
    if not body:
        return ["No CPU backend ran both compiled and native, so no CPU target is measured."]
    return _table(["equation", "backend", "size", "target", "measured", "verdict"], body)


def targets(rows: list[Row]) -> list[str]:
    """The issue's GPU targets, each with its measured value: met or missed, by how much."""
    gpu_rows = [r for r in rows if r.gpu and r.precision == "float32"]
    if not gpu_rows:
        return ["No GPU backend ran, so none of the GPU targets is measured here."]
    lines = []
    for description, cases, kind in GPU_TARGETS:
        body = []
        for case in cases:
            n, cell = _by_label(gpu_rows, case, "float32", True)
            if not cell:
                continue
            for backend in sorted({r.backend for r in cell.values()}):
                get = cell.get
                eager, comp = get(f"{backend} · eager"), get(f"{backend} · compiled")
                nat = get(f"{backend} · native")
                if kind == "compiled_vs_native" and comp and nat:
                    value, goal = nat.median / comp.median, 1.0
                    shown = f"{value:.2f}×"
                elif kind == "compiled_bandwidth" and comp:
                    value, goal = comp.gb_per_s / (comp.matched_gb_per_s or comp.copy_gb_per_s), 0.8
                    shown = f"{100 * value:.0f} %"
                elif kind == "eager_bandwidth" and eager:
                    value, goal = eager.gb_per_s / (eager.matched_gb_per_s
                                                    or eager.copy_gb_per_s), 0.3
                    shown = f"{100 * value:.0f} %"
                else:
                    continue
                verdict = "met" if value >= goal else f"missed by {100 * (goal - value):.0f} pts" \
                    if kind != "compiled_vs_native" else f"missed ({value / goal:.2f} of goal)"
                body.append([f"`{case}`", backend, pow2(n), shown, verdict])
        lines += [f"**{description}**", "", *_table(["equation", "backend", "size", "measured",
                                                     "verdict"], body), ""]
    attn = [r for r in rows if r.gpu and r.case == "scaled_dot_product_attention"
            and r.precision == "bfloat16"]
    if attn:
        n = decisive([r.elements for r in attn], True)
        cell = {r.label: r for r in attn if r.elements == n}
        comp = best(cell, gpu=True, modes=("compiled",))
        nat = best(cell, gpu=True, modes=("native",))
        if comp and nat:
            ratio = nat.median / comp.median
            lines.append(f"**attention bf16 compiled ≥ 0.9× SDPA**: {ratio:.2f}× at {pow2(n)} "
                         f"({'met' if ratio >= 0.9 else 'missed'}).")
    return lines


# ----------------------------------------------------------------------------- plots
_COLOURS = {"numpy": "#4c72b0", "torch": "#dd8452", "jax": "#55a868", "dask": "#8172b3",
            "torch:cuda": "#c44e52", "cupy": "#937860", "jax:cuda": "#da8bc3"}
_STYLES = {"eager": "-", "compiled": "--", "native": ":"}


def plot(rows: list[Row], out: Path) -> list[Path]:
    """One PNG per equation (a panel per precision), and an overview of every float32 panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    cases = _cases_in_order(rows)

    def panel(ax, case, precision, legend=True):
        mine = [r for r in rows if r.case == case and r.precision == precision]
        for label in sorted({r.label for r in mine}):
            pts = sorted((r.elements, r.gb_per_s) for r in mine if r.label == label)
            backend, mode = label.split(" · ")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], _STYLES[mode], marker="o",
                    markersize=3, color=_COLOURS.get(backend, "black"), label=label)
        ax.set_xscale("log", base=2)
        for backend in sorted({r.backend for r in mine}):
            pts = sorted({(r.elements, r.matched_gb_per_s) for r in mine if r.backend == backend
                          and r.matched_gb_per_s > 0})
            if pts:  # the size-matched roofline: what the device moves at each byte count
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-.", linewidth=0.8,
                        color=_COLOURS.get(backend, "black"), alpha=0.5,
                        label=f"{backend} · bandwidth B(bytes)")
        ax.set_yscale("log")
        ax.set_title(f"{case} ({precision})", fontsize=9)
        ax.set_xlabel("elements")
        ax.set_ylabel("effective GB/s")
        ax.grid(True, which="both", linewidth=0.3)
        if legend:
            ax.legend(fontsize=6)

    for case in cases:
        precisions = [p for p in ("float32", "bfloat16") if any(
            r.case == case and r.precision == p for r in rows)]
        fig, axes = plt.subplots(1, len(precisions), figsize=(6 * len(precisions), 4),
                                 squeeze=False)
        for ax, precision in zip(axes[0], precisions):
            panel(ax, case, precision)
        fig.tight_layout()
        path = out / f"{case}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    if cases:
        cols = 4
        nrows = math.ceil(len(cases) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.4 * nrows), squeeze=False)
        for ax, case in zip(axes.flat, cases):
            panel(ax, case, "float32", legend=False)
        for ax in list(axes.flat)[len(cases):]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower right", fontsize=8)
        fig.tight_layout()
        path = out / "overview.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- the page
def _precision_lines(meta: dict) -> list[str]:
    backends_info = (meta.get("machine_info") or {}).get("backends") or {}
    body = [[f"`{b}`", "; ".join(f"{k} = {v}" for k, v in info.get("precision", {}).items())
             or "— (no such settings)"] for b, info in sorted(backends_info.items())]
    if not body:
        return []
    return ["## Precision environment", "",
            "The settings that change float results without changing the code, as they were "
            "during this run (a conformance session runs torch with TF32 off and JAX at "
            "`jax_default_matmul_precision = \"highest\"`, and so do the benchmarks, which "
            "load the same plugin).", "", *_table(["backend", "settings"], body), ""]


def markdown(rows: list[Row], meta: dict, skipped: dict, *, title: str, plots_dir: str,
             quick: bool = False, notes: list[str] | None = None) -> str:
    machine = meta.get("machine_info") or {}
    commit = meta.get("commit_info") or {}
    lines = [f"# {title}", ""]
    for note in notes or []:
        lines += [f"> {note}", ""]
    if quick:
        lines += ["> **A smoke run** (`--quick`: the two smallest sizes, few rounds) on a "
                  "shared machine: it shows the pipeline works, not how fast anything is.", ""]
    gpu_ran = any(r.gpu for r in rows)
    lines += [
        f"Run {meta.get('datetime', '')} on {machine.get('node', '?')}: "
        f"{machine.get('cpu', {}).get('brand_raw', 'CPU')} "
        f"({machine.get('cpu', {}).get('count', '?')} logical cores), "
        f"commit `{str(commit.get('id', ''))[:10]}`.",
        "",
        "Times are medians per call, each call ended by the backend's `synchronize`. GB/s is the "
        "bytes a perfect kernel must move (each input read once, each output written once) over "
        "that time. The roofline of a row is `max(bytes / B(bytes), FLOPs / matmul peak)`, "
        "where B(bytes) is the bandwidth measured in this run on the same device *at that "
        "row's byte count* (the best of a copy, a sum and an in-place update moving as many "
        "bytes), so a working set "
        "that fits in a cache is judged against that cache: 100 % means as fast as the hardware "
        "moves those bytes, and no honest row can pass it. The matmul peak of a device and "
        "precision is the fastest matmul rate seen in this run: a brief probe of square "
        "products, or a matmul-bound benchmark's own rate, in that precision or a wider one "
        "(a narrow product can always be computed in a wider one). CPU = the best of the CPU "
        "backends, GPU = the best of the GPU backends, each over eager, compiled and native.",
        "",
    ]
    if not gpu_ran:
        lines += ["**Read the ratios, not the times.** Absolute times on a shared 2-core VM vary "
                  "from run to run with what else the machine does; the ratios (eager / native, "
                  "compiled / native, fraction of the size-matched roofline) compare kernels "
                  "measured minutes apart on the same cores and are what this page is for.", ""]
    if budget := meta.get("budget"):
        left = sum((budget.get("left_out_by_plan") or {}).values())
        late = sum((budget.get("skipped_at_run") or {}).values())
        wall = f", and the run took {budget['wall_s']:.0f} s" if "wall_s" in budget else ""
        spares = (f" ({budget['spares_ran']} of them beyond the plan, in the time its estimates "
                  "left over)" if budget.get("spares_ran") else "")
        lines += [f"Time budget: {budget['budget_s']:.0f} s (`--budget`){wall}. "
                  f"{budget['ran']} benchmarks ran{spares}; {budget['planned']} were planned, "
                  f"{late} of them skipped when the time ran short; {left} were left out by "
                  "the budget (priorities: the families the targets judge at the decisive "
                  "size first, then the others, then bfloat16, then the other sizes, smallest "
                  "first).", ""]
        if budget.get("start_up_s", 0) > budget["budget_s"] - budget.get("reserve_for_page_s", 0):
            lines += [f"**The start-up alone outran the budget**: imports, collecting the "
                      f"benchmarks and probing the backends took {budget['start_up_s']:.0f} s, "
                      "more than the budget left for benchmarks once the page's time is kept, "
                      "so none was planned.", ""]
        if "cpu_share" in budget:
            lines += [f"As it planned, the run got {100 * budget['cpu_share']:.0f} % of a CPU "
                      "core (100 % on a machine doing nothing else; less means other jobs "
                      "shared the cores, and the times with them).", ""]
    lines += ["## The hardware, measured in this run", ""]
    roofs = sorted({(r.backend, r.device, r.precision, r.copy_gb_per_s, r.matmul_tflops)
                    for r in rows})
    lines += ["No benchmark ran, so nothing was measured."] if not rows else _table(
        ["backend", "device", "precision", "main-memory copy bandwidth",
         "matmul peak (the fastest seen: see below)"],
        [[b, d, p, f"{bw:.1f} GB/s", f"{tf:.2f} TFLOP/s"] for b, d, p, bw, tf in roofs])
    matched = defaultdict(dict)
    for r in rows:
        matched[(r.backend, r.precision)].setdefault(r.elements, r.matched_gb_per_s)
    sizes = sorted({r.elements for r in rows})
    if len(sizes) > 1:
        lines += ["", "Size-matched bandwidth B at each size's byte count (of its first "
                  "family: the byte count differs a little between families):", ""]
        lines += _table(["backend", "precision", *[pow2(n) for n in sizes]],
                        [[b, p, *[f"{cells[n]:.0f} GB/s" if n in cells else "" for n in sizes]]
                         for (b, p), cells in sorted(matched.items())])
    lines += ["", *_precision_lines(meta)]
    for gpu in (False, True):
        for precision in ("float32", "bfloat16"):
            if any(r.precision == precision and r.gpu == gpu for r in rows):
                sizes_here = [r.elements for r in rows if r.gpu == gpu]
                lines += [f"## Ratios, {'GPU' if gpu else 'CPU'} ({precision}, at "
                          f"{pow2(decisive(sizes_here, gpu))} or the largest size measured)",
                          "", *ratios(rows, precision, gpu=gpu), ""]
    for precision in ("float32", "bfloat16"):
        if any(r.precision == precision for r in rows):
            lines += [f"## GPU against CPU ({precision}, largest size measured)", "",
                      *headline(rows, precision), ""]
    lines += ["## CPU targets", "", *cpu_targets(rows), ""]
    lines += ["## GPU targets (float32 unless stated)", "", *targets(rows)]
    over = above_roofline(rows)
    lines += ["", "## Rows above 100 % of the roofline", ""]
    lines += (["None."] if not over else [
        "Each of these is a broken measurement or a cost model that counts more bytes than "
        "the kernel moves; tests/test_benchmarks.py fails on them.", "",
        *_table(["equation", "backend · mode", "precision", "size", "% of roofline"],
                [[f"`{r.case}`", r.label, r.precision, pow2(r.elements),
                  f"{100 * r.fraction:.0f} %"] for r in over])])
    if skipped:
        lines += ["", "## Not measured, and why", ""]
        lines += _table(["reason", "benchmarks"],
                        [[reason, str(count)] for reason, count in sorted(skipped.items())])
    lines += ["", "## Per equation", "",
              "Each cell: median time · effective GB/s · % of the size-matched roofline.", ""]
    for case in _cases_in_order(rows):
        lines += [f"### `{case}`", "", f"![{case}]({plots_dir}/{case}.png)", ""]
        for precision in ("float32", "bfloat16"):
            table = detail(rows, case, precision)
            if table:
                lines += [f"{precision}:", "", *table, ""]
    return "\n".join(lines) + "\n"
