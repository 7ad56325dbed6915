"""``python -m benchmarks``: time every equation family on CPU and GPU backends, write the page.

    python -m benchmarks                                   # every backend that runs here
    python -m benchmarks --backends numpy,torch,torch:cuda,cupy --out docs/results/benchmarks
    python -m benchmarks --quick                           # smoke run (CI): small sizes only
    python -m benchmarks --budget 600                      # what fits in ten minutes
    python -m benchmarks --render-only --out DIR           # redraw the page from DIR's JSON
    python -m benchmarks -- -k softmax                     # extra pytest arguments

It writes, under ``--out``: ``benchmarks.json`` (pytest-benchmark's raw file, every round and
the cost model in ``extra_info``), ``skipped.json`` (reason → count), ``benchmarks.md`` (the
tables) and ``plots/*.png`` (throughput against size, one line per backend and mode). A backend
that cannot run here is listed with its reason, never silently dropped. Speed is reported,
never asserted; the exit status is pytest's (non-zero only if a benchmark errors).

``--budget SECONDS`` chooses families, sizes and rounds so that the whole command, page and
plots included, takes SECONDS give or take 10 % (see benchmarks/budget.py for the priorities).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import backends

HERE = Path(__file__).resolve().parent
DEFAULT_BACKENDS = ("numpy", "torch", "jax", "torch:cuda", "cupy", "jax:cuda")


class _SkipRecorder:
    """Collects the reason of every skipped benchmark, and the plan of a budgeted run."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.budget: dict | None = None

    def pytest_sessionfinish(self, session) -> None:
        from .budget import STASH

        plan = session.config.stash.get(STASH, None)
        if plan is not None:
            self.budget = plan.summary()

    def pytest_runtest_logreport(self, report) -> None:
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = report.longrepr[2]
            self.reasons[reason.removeprefix("Skipped: ")] += 1


def _empty_run(budget: dict) -> dict:
    """pytest-benchmark's JSON for a run in which no benchmark ran."""
    import datetime
    import platform

    return {"machine_info": {"node": platform.node(), "machine": platform.machine(),
                             "python_version": platform.python_version(),
                             "cpu": {"brand_raw": platform.processor() or "CPU"}},
            "commit_info": {}, "benchmarks": [], "budget": budget,
            "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def _split(argv):
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    argv, pytest_args = _split(list(sys.argv[1:] if argv is None else argv))
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                   help="comma-separated backend ids (default: %(default)s; those that cannot "
                        "run here are reported as skipped)")
    p.add_argument("--quick", action="store_true",
                   help="the two smallest sizes, few rounds: checks the pipeline, not speed")
    p.add_argument("--max-size", type=int, default=None, metavar="LOG2",
                   help="leave out sizes above 2^LOG2 elements (default: up to 2^28)")
    p.add_argument("--out", type=Path, default=Path("benchmark-results"))
    p.add_argument("--render-only", action="store_true",
                   help="do not run anything: rebuild the page from --out/benchmarks.json")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="choose families, sizes and rounds to finish within SECONDS (±10 %%)")
    p.add_argument("--started", type=float, default=None, metavar="MONOTONIC",
                   help="when the budget's clock started: the caller's time.monotonic() as it "
                        "launched this command (default: as this command starts)")
    p.add_argument("--title", default=None)
    p.add_argument("--note", action="append", default=[],
                   help="a line for the top of the page (repeatable)")
    args = p.parse_args(argv)
    if args.started is not None:  # CLOCK_MONOTONIC: one clock for every process of a boot
        started = min(started, args.started)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    raw, skipped_file = out / "benchmarks.json", out / "skipped.json"
    rc = 0
    if not args.render_only:
        runnable, skipped = [], Counter()
        for backend_id in backends.parse(args.backends):
            try:
                backends.get(backend_id)
                runnable.append(backend_id)
            except backends.BackendUnavailable as exc:
                skipped[f"backend {backend_id} not run: {exc}"] += 1
        if not runnable:
            print("no requested backend can run here:", *skipped, sep="\n  ", file=sys.stderr)
            return 2
        try:
            import pytest_benchmark  # noqa: F401
        except ImportError:
            print("the benchmarks need pytest-benchmark: pip install 'ai-math-spec[bench]'",
                  file=sys.stderr)
            return 2
        import pytest

        raw.unlink(missing_ok=True)  # a page of this run's results, never an earlier run's
        recorder = _SkipRecorder()
        rc = pytest.main([
            str(HERE / "test_throughput.py"), f"--backend={','.join(runnable)}",
            "-p", "no:cacheprovider", "-q", f"--benchmark-json={raw}",
            "--benchmark-columns=median,rounds", "--benchmark-sort=fullname",
            *(["--bench-quick"] if args.quick else []),
            *([f"--bench-max-size={args.max_size}"] if args.max_size else []),
            *([f"--bench-budget={args.budget}", f"--bench-started={started!r}"]
              if args.budget else []), *pytest_args,
        ], plugins=[recorder])
        skipped.update(recorder.reasons)
        if args.budget and not raw.is_file() and recorder.budget is not None:
            # nothing fitted the budget (pytest-benchmark writes no file then): a page that
            # says so all the same
            raw.write_text(json.dumps(_empty_run(recorder.budget), indent=1))
        if args.budget and raw.is_file():
            planned = json.loads(raw.read_text()).get("budget", {})
            # pytest saw the others skip
            skipped.update(planned.get("deselected", {}))
            skipped.update(planned.get("not_runnable", {}))
        skipped_file.write_text(json.dumps(dict(skipped), indent=1, sort_keys=True))
    if not raw.is_file():
        print(f"no results to render: {raw} does not exist", file=sys.stderr)
        return rc or 2
    from . import report

    rows, meta = report.load(raw)
    skipped = json.loads(skipped_file.read_text()) if skipped_file.is_file() else {}
    quick = args.quick or (args.render_only and all(r.elements <= 2**16 for r in rows))
    report.plot(rows, out / "plots")
    if args.budget and not args.render_only:
        # the run's wall time, on the page and in the JSON: all but the page's own writing
        data = json.loads(raw.read_text())
        data.setdefault("budget", {})["wall_s"] = round(time.monotonic() - started, 1)
        raw.write_text(json.dumps(data, indent=1))
        meta["budget"] = data["budget"]
    title = args.title or "Benchmarks: GPU versus CPU throughput"
    page = report.markdown(rows, meta, skipped, title=title, plots_dir="plots", quick=quick,
                           notes=args.note)
    (out / "benchmarks.md").write_text(page)
    elapsed = time.monotonic() - started
    print(f"wrote {out / 'benchmarks.md'} ({len(rows)} timings), {out / 'plots'}/ in "
          f"{elapsed:.0f} s" + (f" (budget {args.budget:.0f} s)" if args.budget else ""))
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
