"""Scale-out of the dask backend: softmax cross-entropy over ~N logits on 1, 2, 4, … workers.

    python -m benchmarks.dask_scaling                          # 10⁸ logits, 1,2,4,8,16 workers
    python -m benchmarks.dask_scaling --logits 1e9 --workers 1,2,4
    python -m benchmarks.dask_scaling --quick                  # seconds (CI): tiny N, 1,2 workers
    python -m benchmarks.dask_scaling --scheduler tcp://host:8786   # a running cluster, as it is

For each worker count a `LocalCluster` (worker processes, one thread each) generates a
(rows, vocab) float32 batch of logits and its integer labels with `dask.array.random` (seeded,
chunked by rows) on the workers and keeps them there (`persist`): nothing the size of the batch
ever reaches this process. The timed work is `spec.softmax_cross_entropy(logits, labels)` (mean)
computed on the cluster: one warm-up, then the median of `--repeats` runs. Before timing, the
cluster's result over the first `--check-logits` logits must equal a float64 NumPy reference
computed here chunk by chunk (and every worker count must agree with the first), so the
benchmark cannot time nonsense. Speedup is against the smallest worker count w₀ (1 by
default): t(w₀) / t(w); scaling efficiency = speedup / (w / w₀).

Beside each worker count it measures what the machine allows — the same equation on as many
chunks in as many plain NumPy processes, no dask — and the cores other processes kept busy
during the timing. A machine with C cores cannot speed up past C workers: the report records
`os.cpu_count()` and says so. Writes `dask_scaling.json`, `dask_scaling.md` and
`dask_scaling.png` (speedup against the ideal line) under `--out`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import spec
from backends._base import _distribution_version
from backends.dask import connect, start_local_cluster

DEFAULT_OUT = Path("benchmark-results/dask-scaling")
STEM = "dask_scaling"
#: relative tolerance of the float32 result against the float64 reference
RTOL = 2e-5


def inputs(rows: int, vocab: int, chunk_rows: int, seed: int):
    """Lazy (rows, vocab) float32 standard-normal logits and uniform int64 labels, by rows."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    logits = rng.standard_normal((rows, vocab), chunks=(chunk_rows, vocab), dtype=np.float32)
    labels = rng.integers(0, vocab, size=rows, chunks=chunk_rows)
    return logits, labels


def reference(logits, labels, blocks: int) -> float:
    """Mean softmax cross-entropy of the first `blocks` row chunks in float64 NumPy, computed in
    this process one chunk at a time (dask's synchronous scheduler only generates the chunk)."""
    import dask

    total, rows = 0.0, 0
    for i in range(blocks):
        z, y = dask.compute(logits.blocks[i], labels.blocks[i], scheduler="sync")
        z = z.astype(np.float64)
        m = z.max(axis=1)
        lse = np.log(np.exp(z - m[:, None]).sum(axis=1)) + m
        total += float(np.sum(lse - z[np.arange(len(z)), y]))
        rows += len(z)
    return total / rows


def _loss(client, logits, labels) -> float:
    with spec.value_checks(False):  # the labels are in range by construction
        graph = spec.softmax_cross_entropy(logits, labels)
    return float(client.compute(graph).result())


def measure(client, lazy, args) -> dict:
    """Persist the inputs on the cluster, check the result, then time the equation."""
    import distributed

    logits, labels = client.persist(list(lazy))
    distributed.wait([logits, labels])
    check_blocks = min(logits.numblocks[0], max(1, math.ceil(args.check_logits / (
        args.chunk_rows * args.vocab))))
    check_rows = min(check_blocks * args.chunk_rows, logits.shape[0])
    expected = reference(*lazy, check_blocks)
    got = _loss(client, logits[:check_rows], labels[:check_rows])
    error = abs(got - expected) / abs(expected)
    if not error <= RTOL:
        raise AssertionError(f"the cluster's softmax cross-entropy {got!r} differs from the "
                             f"float64 reference {expected!r} by {error:.1e} (relative)")
    value = _loss(client, logits, labels)  # warm-up
    ours = None if args.scheduler else _our_processes(client)
    cpu_before, times = _cpu_seconds(ours), []
    for _ in range(args.repeats):
        start = time.perf_counter()
        again = _loss(client, logits, labels)
        times.append(time.perf_counter() - start)
        if again != value:
            raise AssertionError(f"two runs disagree: {value!r} then {again!r}")
    elsewhere = _cpu_seconds(ours)
    elsewhere = None if ours is None else max(
        0.0, (elsewhere[0] - cpu_before[0]) - (elsewhere[1] - cpu_before[1])) / sum(times)
    threads = client.nthreads()
    client.cancel([logits, labels])
    return {"workers": len(threads), "threads": sum(threads.values()),
            "seconds": statistics.median(times), "times": times, "loss": value,
            "cores_busy_elsewhere": elsewhere,
            "check": {"logits": check_rows * args.vocab, "reference_float64": expected,
                      "cluster_float32": got, "relative_error": error}}


def _numpy_worker(barrier, queue, chunk_rows: int, vocab: int, n: int) -> None:
    z = np.random.default_rng(os.getpid()).standard_normal((chunk_rows, vocab), np.float32)
    y = np.zeros(chunk_rows, dtype=np.int64)
    with spec.value_checks(False):
        spec.softmax_cross_entropy(z, y)  # warm-up
        barrier.wait()
        start = time.perf_counter()
        for _ in range(n):
            spec.softmax_cross_entropy(z, y)
    queue.put(time.perf_counter() - start)


def numpy_ceiling(workers: int, chunk_rows: int, vocab: int, chunks: int) -> float:
    """Logits/s of `workers` plain processes (no dask) evaluating the equation in NumPy on the
    same number of chunks of the same shape, started together: what this machine allows."""
    ctx = multiprocessing.get_context("spawn")
    barrier, queue, per = ctx.Barrier(workers), ctx.Queue(), math.ceil(chunks / workers)
    procs = [ctx.Process(target=_numpy_worker, args=(barrier, queue, chunk_rows, vocab, per))
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    seconds = max(queue.get() for _ in procs)
    for proc in procs:
        proc.join()
    return workers * per * chunk_rows * vocab / seconds


def _our_processes(client) -> list:
    """psutil handles on this process (client and scheduler), the workers and their nannies."""
    import psutil

    workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
    return [psutil.Process(), *workers, *(w.parent() for w in workers)]


def _cpu_seconds(processes) -> tuple[float, float]:
    """CPU seconds used so far by the whole machine (all cores) and by `processes`."""
    import psutil

    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
    ours = sum(sum(p.cpu_times()[:2]) for p in processes or [])
    return busy, ours


def run(args) -> dict:
    rows = max(1, round(args.logits / args.vocab))
    lazy = inputs(rows, args.vocab, args.chunk_rows, args.seed)
    total_ram = _total_memory()
    results = []
    if args.scheduler:
        client = connect(args.scheduler)
        try:
            results.append(measure(client, lazy, args) | {"scheduler": args.scheduler})
        finally:
            client.close()
    for n in [] if args.scheduler else args.workers:
        memory_limit = int(0.75 * total_ram / n)  # the workers share 3/4 of this machine's RAM
        client, cluster = start_local_cluster(n, memory_limit=memory_limit)
        try:
            row = measure(client, lazy, args)
        finally:
            client.close()
            cluster.close()
        ceiling = numpy_ceiling(n, args.chunk_rows, args.vocab, lazy[0].numblocks[0])
        results.append(row | {"memory_limit": memory_limit, "scheduler": "LocalCluster",
                              "numpy_processes_logits_per_s": ceiling})
        print(f"{n:>3} workers: {row['seconds']:.3f} s", file=sys.stderr)
    base = results[0]
    for row in results:
        row["logits_per_s"] = rows * args.vocab / row["seconds"]
        row["speedup"] = base["seconds"] / row["seconds"]
        row["efficiency"] = row["speedup"] * base["workers"] / row["workers"]
        if abs(row["loss"] / base["loss"] - 1) > RTOL:
            raise AssertionError(f"{row['workers']} workers give {row['loss']!r}, "
                                 f"{base['workers']} gave {base['loss']!r}")
    return {
        "equation": "spec.softmax_cross_entropy(logits, labels) (reduction='mean')",
        "command": "python -m benchmarks.dask_scaling " + " ".join(args.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "memory_gib": round(total_ram / 2**30, 1),
                    "platform": platform.platform(), "python": platform.python_version()},
        "versions": {d: _distribution_version(d) for d in ("dask", "distributed", "numpy")},
        "logits": rows * args.vocab, "rows": rows, "vocab": args.vocab, "dtype": "float32",
        "chunk_rows": args.chunk_rows, "chunks": lazy[0].numblocks[0],
        "bytes": rows * args.vocab * 4 + rows * 8, "seed": args.seed, "repeats": args.repeats,
        "client_peak_rss_bytes": _peak_rss(), "results": results,
    }


def _peak_rss() -> int:
    """This process's peak resident memory (the workers' is not counted)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _total_memory() -> int:
    import psutil  # a dependency of distributed

    return psutil.virtual_memory().total


def markdown(report: dict) -> str:
    """The results as a Markdown page: setup, table, the core-count caveat, the plot."""
    m, first = report["machine"], report["results"][0]
    worst = max(report["results"], key=lambda r: r["check"]["relative_error"])["check"]
    chunk = report["chunk_rows"] * report["vocab"] * 4
    lines = [
        f"# Dask scale-out: softmax cross-entropy over {report['logits']:.2e} logits", "",
        f"`{report['command']}`, {report['date']}: {m['platform']}, "
        f"**`os.cpu_count()` = {m['cpu_count']}**, {m['memory_gib']} GiB RAM; "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", "",
        f"{report['equation']} over a ({report['rows']:,} × {report['vocab']:,}) float32 batch "
        f"({_mb(report['bytes'])}) in {report['chunks']} chunks of {report['chunk_rows']} rows "
        f"({_mb(chunk)} each), generated on the workers by `dask.array.random` and persisted "
        f"there (this process peaked at {_mb(report['client_peak_rss_bytes'])}). Each worker "
        "is a process with one thread; each worker count is timed over "
        f"{report['repeats']} computes after a warm-up. Checked against a float64 NumPy "
        f"reference over the first {worst['logits']:.2e} logits at every worker count: "
        f"relative error at most {worst['relative_error']:.1e}; loss {first['loss']:.6f}.", "",
        f"| workers | seconds | fastest | logits/s | speedup vs {first['workers']} "
        "| efficiency | NumPy alone, logits/s | busy elsewhere |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    one = len(report["results"]) == 1  # a running cluster as it is: nothing to compare
    lines += [f"| {r['workers']} | {r['seconds']:.3f} | {min(r['times']):.3f} | "
              f"{r['logits_per_s']:.3g} | {'—' if one else format(r['speedup'], '.2f')} | "
              f"{'—' if one else format(r['efficiency'], '.0%')} | "
              f"{_rate(r.get('numpy_processes_logits_per_s'))} | "
              f"{_cores(r['cores_busy_elsewhere'])} |"
              for r in report["results"]]
    lines += ["", "Seconds: the median compute; fastest: the quickest; speedup and efficiency "
              "from the medians; NumPy alone: as many plain processes as workers, no dask, "
              "evaluating the equation on as many chunks of the same shape (the most this "
              "machine gives, whatever the scheduler); busy elsewhere: the cores that other "
              "processes on this "
              "machine kept busy during the timed computes, on average (this benchmark's "
              f"processes had the other {m['cpu_count']} − that)."]
    over = [r["workers"] for r in report["results"] if r["workers"] > (m["cpu_count"] or 1)]
    if over:
        lines += ["", f"This machine has {m['cpu_count']} cores: the runs with "
                  f"{', '.join(map(str, over))} workers put several worker processes on one "
                  "core, so they cannot be faster and their efficiency must fall; they measure "
                  "the cost of oversubscription and scheduling, not scale-out. Run it on a "
                  "machine (or a cluster, `--scheduler`) with as many cores as workers to "
                  "measure scaling."]
    lines += ["", f"![Speedup against workers]({STEM}.png)", ""]
    return "\n".join(lines)


def _rate(n: float | None) -> str:
    return "—" if n is None else f"{n:.3g}"


def _cores(n: float | None) -> str:
    return "—" if n is None else f"{n:.2f} cores"


def _mb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def plot(report: dict, path: Path) -> None:
    """Speedup against workers, with the ideal line and this machine's core count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    workers = [r["workers"] for r in report["results"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ideal = [w / workers[0] for w in workers]
    ax.plot(workers, ideal, "--", color="grey", label="ideal (speedup ∝ workers)")
    ax.plot(workers, [r["speedup"] for r in report["results"]], "o-", label="dask, measured")
    ceilings = [r.get("numpy_processes_logits_per_s") for r in report["results"]]
    if None not in ceilings:
        ax.plot(workers, [c / ceilings[0] for c in ceilings], "s:", color="tab:green",
                label="NumPy alone, as many processes")
    ax.axvline(report["machine"]["cpu_count"], color="tab:red", linestyle=":",
               label=f"cores here ({report['machine']['cpu_count']})")
    ax.set(xscale="log", yscale="log", xlabel="workers (processes, 1 thread each)",
           ylabel="speedup", title=f"softmax cross-entropy, {report['logits']:.1e} logits")
    ax.set_xticks(workers, [str(w) for w in workers])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dask_scaling",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--logits", type=float, default=1e8, help="about how many logits (1e8)")
    p.add_argument("--vocab", type=int, default=32768, help="classes per row (32768)")
    p.add_argument("--chunk-rows", type=int, default=128, help="rows per chunk (128)")
    p.add_argument("--workers", default="1,2,4,8,16", help="worker counts (1,2,4,8,16)")
    p.add_argument("--repeats", type=int, default=3, help="timed computes per count (3)")
    p.add_argument("--check-logits", type=float, default=1e8,
                   help="logits checked against the float64 reference (1e8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scheduler", help="a running scheduler's address: time that cluster as is")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder ({DEFAULT_OUT})")
    p.add_argument("--quick", action="store_true",
                   help="tiny N on 1 and 2 workers, for CI (overrides the sizes)")
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.quick:
        args.logits, args.vocab, args.chunk_rows, args.workers = 2**20, 1024, 64, "1,2"
        args.repeats = 2
    args.workers = sorted({int(w) for w in args.workers.split(",")})
    if args.workers[0] < 1:
        p.error("--workers: counts must be ≥ 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{STEM}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{STEM}.md").write_text(markdown(report))
    plot(report, args.out / f"{STEM}.png")
    print(markdown(report))
    print(f"wrote {args.out}/{STEM}.json, .md, .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
