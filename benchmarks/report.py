"""Turn a pytest-benchmark JSON file into the results page: Markdown tables and PNG plots.

The page answers, per equation: how long one call takes on each backend and mode, how close
that is to the hardware's roofline measured in the same run, where the GPU starts to beat the
CPU (the crossover size) and by how much it wins at the largest size, and whether the
compiled spec keeps up with the framework's own kernel. It states the issue's targets as met
or missed with the measured numbers; it never hides a missing backend (its reason is listed).
"""

from __future__ import annotations

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
            float(roof["copy_gb_per_s"]), float(roof["matmul_tflops"])))
    meta = {k: data.get(k) for k in ("machine_info", "commit_info", "datetime", "version")}
    return rows, meta


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


TARGETS = [
    # (description, cases, check)
    ("compiled ≥ 1.0× native (none below 0.9×) at the largest size",
     ("softmax", "log_softmax", "layer_norm", "rms_norm", "softmax_cross_entropy", "gelu",
      "adam_step"), "compiled_vs_native"),
    ("compiled ≥ 80 % of the copy bandwidth at the largest size",
     ("softmax", "log_softmax", "layer_norm", "rms_norm", "softmax_cross_entropy", "gelu",
      "adam_step"), "compiled_bandwidth"),
    ("eager ≥ 30 % of the copy bandwidth at the largest size",
     ("softmax", "log_softmax", "logsumexp", "softmax_cross_entropy", "gelu", "silu",
      "layer_norm", "rms_norm", "rope", "adam_step"), "eager_bandwidth"),
]


def targets(rows: list[Row]) -> list[str]:
    """The issue's GPU targets, each with its measured value: met or missed, by how much."""
    gpu_rows = [r for r in rows if r.gpu and r.precision == "float32"]
    if not gpu_rows:
        return ["No GPU backend ran, so none of the GPU targets is measured here."]
    lines = []
    cells = index(gpu_rows)
    for description, cases, kind in TARGETS:
        body = []
        for case in cases:
            sizes = [n for (c, _, n) in cells if c == case]
            if not sizes:
                continue
            n = max(sizes)
            for backend in sorted({r.backend for r in cells[(case, "float32", n)].values()}):
                get = cells[(case, "float32", n)].get
                eager, comp = get(f"{backend} · eager"), get(f"{backend} · compiled")
                nat = get(f"{backend} · native")
                if kind == "compiled_vs_native" and comp and nat:
                    value, goal = nat.median / comp.median, 1.0
                    shown = f"{value:.2f}×"
                elif kind == "compiled_bandwidth" and comp:
                    value, goal = comp.gb_per_s / comp.copy_gb_per_s, 0.8
                    shown = f"{100 * value:.0f} %"
                elif kind == "eager_bandwidth" and eager:
                    value, goal = eager.gb_per_s / eager.copy_gb_per_s, 0.3
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
        n = max(r.elements for r in attn)
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
        for device, bw in sorted({(r.device, r.copy_gb_per_s) for r in mine}):
            ax.axhline(bw, color="grey", linewidth=0.6, linestyle="-.")
            ax.text(0.01, bw, f"copy {bw:.0f} GB/s ({device})", fontsize=6, color="grey",
                    va="bottom", transform=ax.get_yaxis_transform())
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
def markdown(rows: list[Row], meta: dict, skipped: dict, *, title: str, plots_dir: str,
             quick: bool = False) -> str:
    machine = meta.get("machine_info") or {}
    commit = meta.get("commit_info") or {}
    lines = [f"# {title}", ""]
    if quick:
        lines += ["> **A smoke run** (`--quick`: the two smallest sizes, few rounds) on a "
                  "shared machine: it shows the pipeline works, not how fast anything is.", ""]
    lines += [
        f"Run {meta.get('datetime', '')} on {machine.get('node', '?')}: "
        f"{machine.get('cpu', {}).get('brand_raw', 'CPU')} "
        f"({machine.get('cpu', {}).get('count', '?')} logical cores), "
        f"commit `{str(commit.get('id', ''))[:10]}`.",
        "",
        "Times are medians per call, each call ended by the backend's `synchronize`. GB/s is the "
        "bytes a perfect kernel must move (each input read once, each output written once) over "
        "that time; the roofline is `max(bytes / copy bandwidth, FLOPs / matmul peak)`, both "
        "measured in this run on the same device (below), so 100 % means as fast as the "
        "hardware allows. CPU = the best of the CPU backends, GPU = the best of the GPU "
        "backends, each over eager, compiled and native.",
        "",
        "## The hardware, measured in this run",
        "",
    ]
    roofs = sorted({(r.backend, r.device, r.precision, r.copy_gb_per_s, r.matmul_tflops)
                    for r in rows})
    lines += _table(["backend", "device", "precision", "copy bandwidth", "matmul peak"],
                    [[b, d, p, f"{bw:.1f} GB/s", f"{tf:.2f} TFLOP/s"]
                     for b, d, p, bw, tf in roofs])
    for precision in ("float32", "bfloat16"):
        if any(r.precision == precision for r in rows):
            lines += ["", f"## Headline ({precision}, largest size measured)", "",
                      *headline(rows, precision)]
    lines += ["", "## Targets (GPU, float32 unless stated)", "", *targets(rows)]
    if skipped:
        lines += ["", "## Not measured, and why", ""]
        lines += _table(["reason", "benchmarks"],
                        [[reason, str(count)] for reason, count in sorted(skipped.items())])
    lines += ["", "## Per equation", "",
              "Each cell: median time · effective GB/s · % of the roofline.", ""]
    for case in _cases_in_order(rows):
        lines += [f"### `{case}`", "", f"![{case}]({plots_dir}/{case}.png)", ""]
        for precision in ("float32", "bfloat16"):
            table = detail(rows, case, precision)
            if table:
                lines += [f"{precision}:", "", *table, ""]
    return "\n".join(lines) + "\n"
