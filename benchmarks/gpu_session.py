"""``python -m benchmarks.gpu_session --budget SECONDS --out docs/results``: the one GPU command.

GPU time comes in short loans (about fifteen minutes, start-up included), so everything the
project wants from a GPU is one prepared command that fits a budget:

1. **conformance** (Hypothesis profile ``ci``) on ``torch:cuda``, ``cupy`` and ``jax:cuda``,
   with TF32 off and JAX at ``jax_default_matmul_precision="highest"`` (the reports say so);
   tests are run in a fixed pseudo-random order and those the budget leaves no time for are
   skipped with that reason (``benchmarks/deadline.py``), so a report is always written;
2. **the tiny GPT's time per step** on ``torch:cuda`` (``docs/examples/tiny_gpt.py``, as many
   steps as fit its share: ``--max-seconds``);
3. **benchmarks** in what is left (``python -m benchmarks --budget``): float32 and bfloat16,
   the families the targets judge at the size that decides them first;

and writes every report where the docs read them:

* ``OUT/conformance/<backend>.json`` and ``.md`` (one per backend; ``report.json``, the
  combined CPU report, is left alone),
* ``OUT/benchmarks/gpu/`` (``benchmarks.md``, its JSON and plots, and ``session.md``: what
  ran, for how long, and what the budget left out),
* ``OUT/examples/tiny_gpt_torch-cuda.json`` and ``.png``.

On a machine without a GPU the same plan runs on the CPU backends that stand in for them
(``torch`` for ``torch:cuda``, ``numpy`` for ``cupy``, ``jax`` for ``jax:cuda``), every page
says so at its top, and every file goes under ``OUT/benchmarks/gpu-session-cpu-stand-in/``
(its conformance reports and tiny-GPT run included), where it replaces neither the committed
CPU results nor GPU ones.

Every phase has an end fixed when it starts, and the phases run in the order conformance,
tiny GPT, benchmarks. A phase is given the seconds it needs however little it does (`FIXED`:
start-up, collection, its report) plus its share of the rest (conformance 50 %, tiny GPT 10 %;
a phase that ends early leaves its time to the next); the benchmarks, last, get whatever is
left and plan their run to end with it (``--budget``). When the fixed seconds of all do not
fit (a short budget on a shared machine), the first phases get theirs and a phase left too
little to start is recorded as not run. A second or so is kept for the session
page. Each child is stopped at its end plus a grace (a run past it still writes its report),
so the session ends within about 10 % of SECONDS. The exit status is 0 when every phase ran and
nothing failed, 1 otherwise (the session page says which).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import backends

from .budget import cpu_share, slowdown

_IMPORTED = time.monotonic()  # the session's clock (the heavy imports come later, in main)
ROOT = Path(__file__).resolve().parents[1]
GPU_BACKENDS = ("torch:cuda", "cupy", "jax:cuda")
#: the CPU backend that stands in for each GPU backend on a machine without a GPU
STAND_IN = {"torch:cuda": "torch", "cupy": "numpy", "jax:cuda": "jax"}
#: the phases, in the order they run; the last takes whatever is left
ORDER = ("conformance", "tiny_gpt", "benchmarks")
#: shares of the time left once every phase has its fixed seconds (the last phase: the rest)
SHARES = {"conformance": 0.5, "tiny_gpt": 0.1, "benchmarks": 0.4}
#: seconds a phase takes however little it does on a quiet machine: the child's imports (and
#: CUDA's start), its collection, its report or page. Estimated on the project's 2-core VM from
#: runs that shared it with other jobs, scaled by the share of a core the run got (`cpu_share`):
#: conformance 4 s of imports, 6 s of collecting 4 455 tests and 10 s to skip what is left and
#: write six reports at a third of a core; the tiny GPT's imports, first step, validation,
#: sample and plot; the benchmarks' imports, probes and page
FIXED = {"conformance": 12.0, "tiny_gpt": 8.0, "benchmarks": 6.0}
#: the part of conformance's FIXED that comes after its deadline (skipping, the reports)
CONFORMANCE_TAIL = 5.0
#: seconds kept at the end for the session page
PAGE_SECONDS = 1.0
#: a phase left less than this fraction of its fixed seconds is not started
MIN_START = 0.6


@dataclass
class Phase:
    name: str
    allotted: float = 0.0
    seconds: float = 0.0
    exit_code: int | None = None
    command: list[str] = field(default_factory=list)
    note: str = ""
    files: list[str] = field(default_factory=list)


#: device nodes without which no GPU backend can run (NVIDIA; AMD's ROCm; WSL's GPU)
GPU_DEVICE_NODES = ("nvidia[0-9]*", "kfd", "dxg")


def _gpu_device() -> bool:
    """A GPU device node, or NVIDIA's driver tool (a sandbox may expose the GPU under other
    names): then the GPU backends are asked whether they run."""
    dev = Path("/dev")
    return any(any(dev.glob(pattern)) for pattern in GPU_DEVICE_NODES) or \
        shutil.which("nvidia-smi") is not None


def _available(ids) -> tuple[list[str], dict[str, str]]:
    ok, why = [], {}
    for backend_id in ids:
        try:
            backends.get(backend_id)
            ok.append(backend_id)
        except backends.BackendUnavailable as exc:
            why[backend_id] = str(exc).splitlines()[0]
    return ok, why


def _gpu_backends() -> tuple[list[str], dict[str, str]]:
    """The GPU backends that run here, and why the others do not. Without a GPU device node
    no library is imported to find that out (torch and JAX take seconds to import, and as
    long to tear down at exit: time the session's budget would pay for nothing)."""
    if not _gpu_device():
        return [], {b: "no GPU device on this machine (/dev/" + ", /dev/".join(
            GPU_DEVICE_NODES) + " and nvidia-smi absent)" for b in GPU_BACKENDS}
    return _available(GPU_BACKENDS)


def _installed(ids) -> tuple[list[str], dict[str, str]]:
    """The stand-in CPU backends whose library is installed (found, not imported)."""
    import importlib.util

    ok, why = [], {}
    for backend_id in ids:
        library = backend_id.split(":")[0]
        if importlib.util.find_spec(library) is None:
            why[backend_id] = f"the library {library!r} is not installed"
        else:
            ok.append(backend_id)
    return ok, why


def banner(stand_in: bool, missing: dict[str, str]) -> str:
    if stand_in:
        return ("**CPU stand-in: no GPU here.** This machine has no usable GPU backend ("
                + "; ".join(f"`{k}`: {v}" for k, v in missing.items())
                + "), so the GPU session ran its plan on the CPU backends that stand in for "
                "them (`torch` for `torch:cuda`, `numpy` for `cupy`, `jax` for `jax:cuda`). "
                "Nothing on this page measures a GPU.")
    text = "**GPU session** (`python -m benchmarks.gpu_session`)."
    if missing:
        text += " Not run, for lack of the library or the device: " + "; ".join(
            f"`{k}` ({v})" for k, v in missing.items()) + "."
    return text


def fixed(name: str, slow: float = 1.0) -> float:
    return FIXED[name] * slow


def allot(name: str, left: float, phases: tuple[str, ...] = ORDER, slow: float = 1.0) -> float:
    """Seconds for phase `name` when `left` seconds remain for it and the phases after it: its
    fixed seconds and its share of the rest; when the fixed seconds of all do not fit, its own
    fixed seconds (or what is left), so that the first phases run and the last ones may not;
    the last phase gets all that is left."""
    rest = phases[phases.index(name):]
    if len(rest) == 1:
        return max(0.0, left)
    need = sum(fixed(p, slow) for p in rest)
    if need >= left:  # the phases first, each with what it needs, while there is time
        return max(0.0, min(left, fixed(name, slow)))
    work = left - need
    return fixed(name, slow) + work * SHARES[name] / sum(SHARES[p] for p in rest)


def plugin_args() -> list[str]:
    """``-p conformance.plugin`` where the project is not installed (a lent GPU machine gets a
    copy of the repository, not a ``pip install``, so pyproject's pytest11 entry point that
    loads the plugin is missing there); nothing where it is (pytest refuses one plugin
    registered twice)."""
    from importlib.metadata import entry_points

    if any(ep.value == "conformance.plugin" for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "conformance.plugin"]


def child_env() -> dict[str, str]:
    """The environment of every phase: this one, without pytest's own variables (a child is
    its own pytest session: not an xdist worker, in which pytest-benchmark switches itself
    off, nor the parent's current test), with the repository on PYTHONPATH (the tiny GPT runs
    as a script, and an uninstalled checkout is importable only from its root) and JAX told
    not to take 75 % of the GPU's memory as it starts (torch and CuPy share the GPU with it in
    the same process); a value the caller set is kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    path = [str(ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def _run(cmd: list[str], *, timeout: float, env: dict | None = None,
         log: Path | None = None) -> tuple[int, float]:
    start = time.monotonic()
    try:
        out = subprocess.run(cmd, cwd=ROOT, env={**child_env(), **(env or {})},
                             timeout=max(1.0, timeout), capture_output=True, text=True)
        code = out.returncode
        text = out.stdout + out.stderr
    except subprocess.TimeoutExpired as exc:
        code = 124
        parts = [p.decode(errors="replace") if isinstance(p, bytes) else (p or "")
                 for p in (exc.stdout, exc.stderr)]
        text = "".join(parts) + f"\n[killed after {timeout:.0f} s]"
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text)
    return code, time.monotonic() - start


def _grace(seconds: float, slack: float) -> float:
    """How long past its end a child may run before it is stopped (its report is worth it):
    a tenth of its time, at least 3 s, but no more than `slack`, the seconds the session can
    spare beyond what the phases after it need (at least 2 s)."""
    return max(2.0, min(max(3.0, 0.1 * seconds), slack))


def _prepend(path: Path, line: str) -> None:
    text = path.read_text()
    title, _, rest = text.partition("\n")
    path.write_text(f"{title}\n\n> {line}\n{rest}" if title.startswith("#") else
                    f"> {line}\n\n{text}")


def conformance(ids: list[str], seconds: float, out: Path, note: str, work: Path, *,
                slack: float, slow: float = 1.0) -> Phase:
    phase = Phase("conformance", allotted=seconds)
    report = work / "conformance"
    # the tests stop starting CONFORMANCE_TAIL before the end (and a twentieth of the time for
    # a test that is running then): the tests left are skipped, the reports built and written
    tail = min(CONFORMANCE_TAIL * slow + 0.05 * seconds, 0.6 * seconds)
    deadline = time.time() + max(1.0, seconds - tail)
    phase.command = [sys.executable, "-m", "conformance", "--backend", ",".join(ids),
                     "--profile", "ci", "--report", str(report), "--quiet", "--",
                     *plugin_args(), "-p", "benchmarks.deadline", "-p", "no:cacheprovider"]
    phase.exit_code, phase.seconds = _run(
        phase.command, timeout=seconds + _grace(seconds, slack),
        env={"SPEC_SESSION_DEADLINE": str(deadline)}, log=work / "conformance.log")
    target = out
    target.mkdir(parents=True, exist_ok=True)
    for backend_id in ids:
        stem = backends.file_stem(backend_id)
        for suffix in (".json", ".md"):
            src = report / f"{stem}{suffix}"
            if not src.is_file():
                continue
            dst = target / f"{stem}{suffix}"
            shutil.copyfile(src, dst)
            if suffix == ".md":
                _prepend(dst, note)
            else:
                data = json.loads(dst.read_text())
                data["session"] = {"note": note, "budget_s": round(seconds, 1)}
                dst.write_text(json.dumps(data, indent=1))
            phase.files.append(str(dst))
    skipped = 0
    for f in phase.files:
        if f.endswith(".json"):
            data = json.loads(Path(f).read_text())
            skipped += sum(1 for r in _records(data) if "time budget ran out" in r)
    phase.note = (f"{skipped} test(s) not run for lack of time" if skipped else
                  "every selected test ran") if phase.files else "no report was written"
    return phase


def _records(report: dict):
    for grid in report.get("matrix", {}).values():
        for row in grid.values():
            for cell in row.values():
                yield from cell.get("reasons", [])


def tiny_gpt(backend_id: str, seconds: float, out: Path, work: Path, *, slack: float,
             slow: float = 1.0) -> Phase:
    phase = Phase("tiny_gpt", allotted=seconds)
    training = max(1.0, seconds - fixed("tiny_gpt", slow))
    phase.command = [sys.executable, str(ROOT / "docs" / "examples" / "tiny_gpt.py"),
                     "--backend", backend_id, "--steps", "100000", "--max-seconds",
                     f"{training:.1f}", "--eval-every", "100000", "--sample-chars", "16",
                     "--no-progress", "--margin=-1e9", "--out", str(out)]
    phase.exit_code, phase.seconds = _run(phase.command, timeout=seconds + _grace(seconds, slack),
                                          log=work / "tiny_gpt.log")
    result = out / f"tiny_gpt_{backends.file_stem(backend_id)}.json"
    if result.is_file():
        data = json.loads(result.read_text())
        phase.files = [str(f) for f in (result, result.with_suffix(".png")) if f.is_file()]
        phase.note = (f"{data['ms_per_step']:.1f} ms/step over {data['steps']} steps "
                      f"(validation loss {data['final_val_loss']:.3f} nats/char; the loss "
                      "needs thousands of steps, this run times the step)")
    else:
        phase.note = "no result was written (see session-tiny_gpt.log)"
    return phase


def benchmarks_phase(ids: list[str], seconds: float, out: Path, note: str, work: Path,
                     title: str, *, slack: float) -> Phase:
    phase = Phase("benchmarks", allotted=seconds)
    # the child's budget starts now, its start-up included (one monotonic clock per boot)
    phase.command = [sys.executable, "-m", "benchmarks", "--backends", ",".join(ids),
                     "--budget", f"{max(1.0, seconds):.1f}", "--started",
                     repr(time.monotonic()), "--out", str(out), "--title", title,
                     "--note", note, "--", *plugin_args(), "-p", "no:cacheprovider"]
    phase.exit_code, phase.seconds = _run(phase.command, timeout=seconds + _grace(seconds, slack),
                                          log=work / "benchmarks.log")
    phase.files = [str(out / "benchmarks.md")] if (out / "benchmarks.md").is_file() else []
    raw = out / "benchmarks.json"
    if raw.is_file():
        budget = json.loads(raw.read_text()).get("budget", {})
        phase.note = (f"{budget.get('ran', '?')} benchmarks ran, "
                      f"{sum((budget.get('left_out_by_plan') or {}).values())} left out by "
                      "the plan")
    elif not phase.files:
        phase.note = "no page was written (see session-benchmarks.log)"
    return phase


def _precision(ids: list[str], done: list[Phase]) -> dict:
    """Each backend's precision environment as the children ran it (conformance settings),
    from the reports they wrote: the conformance JSON, else the benchmarks' machine info."""
    found: dict[str, dict] = {}
    for phase in done:
        for f in phase.files:
            if not f.endswith(".json"):
                continue
            data = json.loads(Path(f).read_text())
            for entry in data.get("backends", []) if isinstance(data.get("backends"), list) \
                    else []:
                found.setdefault(entry.get("id"), entry.get("precision") or {})
        raw = Path(phase.files[0]).with_suffix(".json") if phase.name == "benchmarks" and \
            phase.files else None
        if raw is not None and raw.is_file():
            info = json.loads(raw.read_text()).get("machine_info", {}).get("backends", {})
            for backend_id, entry in info.items():
                found.setdefault(backend_id, entry.get("precision") or {})
    return {b: found.get(b) for b in ids}  # None: no report gave it


def main(argv: list[str] | None = None) -> int:
    # from the command line, the clock started as this module was imported
    started = _IMPORTED if argv is None else time.monotonic()
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_session",
                                description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, required=True, metavar="SECONDS",
                   help="the whole session's wall time, start-up of each phase included")
    p.add_argument("--out", type=Path, default=Path("docs/results"))
    p.add_argument("--only", default=",".join(ORDER),
                   help="the phases to run, comma-separated (default: all three)")
    p.add_argument("--archive", type=Path, default=None, metavar="TAR_GZ",
                   help="also pack every file the session wrote into this .tar.gz, paths "
                        "relative to --out (a lent GPU machine returns a few files, not a "
                        "tree: unpack with tar xzf TAR_GZ -C OUT)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (backends, phases, seconds, folders) and run nothing")
    args = p.parse_args(argv)
    wanted = tuple(x for x in ORDER if x in args.only.split(","))
    gpu_ids, missing = _gpu_backends()
    stand_in = not gpu_ids
    ids = [STAND_IN[g] for g in GPU_BACKENDS] if stand_in else gpu_ids
    ids, more_missing = _installed(ids) if stand_in else (ids, {})
    note = banner(stand_in, missing)
    out: Path = args.out
    bench_out = out / "benchmarks" / ("gpu-session-cpu-stand-in" if stand_in else "gpu")
    examples_out = bench_out / "tiny_gpt" if stand_in else out / "examples"
    print(note, flush=True)
    share = cpu_share()
    slow = slowdown(share)
    print(f"this process gets {share:.0%} of a core: fixed costs × {slow:.1f}", flush=True)
    if args.dry_run:
        print(dry_run(wanted, ids, {**missing, **more_missing}, started + args.budget
                      - PAGE_SECONDS - time.monotonic(), slow, {
                          "conformance": bench_out / "conformance" if stand_in
                          else out / "conformance",
                          "tiny_gpt": examples_out, "benchmarks": bench_out},
                      args.archive))
        return 0
    bench_out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-session-"))
    done: list[Phase] = []
    end = started + args.budget - PAGE_SECONDS
    for k, name in enumerate(wanted):
        left = end - time.monotonic()
        seconds = allot(name, left, wanted, slow)
        later = sum(fixed(p, slow) for p in wanted[k + 1:])
        # what the session can spare past this phase's end: for the last, 5 % of the budget
        slack = (left - seconds - later) if later else 0.05 * args.budget
        print(f"[{time.monotonic() - started:5.0f} s] {name}: {seconds:.0f} s", flush=True)
        if seconds < MIN_START * fixed(name, slow):
            phase = Phase(name, allotted=seconds, note=(
                f"not run: {seconds:.0f} s were left, and its start-up alone takes about "
                f"{fixed(name, slow):.0f} s here"))
        elif name == "conformance":
            phase = conformance(ids, seconds, bench_out / "conformance" if stand_in else
                                out / "conformance", note, work, slack=slack, slow=slow)
        elif name == "benchmarks":
            phase = benchmarks_phase(ids, seconds, bench_out, note, work,
                                     "Benchmarks: GPU session" + (" (CPU stand-in)"
                                                                  if stand_in else ""),
                                     slack=slack)
        else:
            torch_id = "torch" if stand_in else "torch:cuda"
            if torch_id not in ids:
                phase = Phase(name, allotted=seconds, note=f"{torch_id} is not available")
            else:
                phase = tiny_gpt(torch_id, seconds, examples_out, work, slack=slack, slow=slow)
        done.append(phase)
        print(f"[{time.monotonic() - started:5.0f} s] {name}: exit {phase.exit_code}, "
              f"{phase.seconds:.0f} s; {phase.note}", flush=True)

    for log in work.glob("*.log"):
        shutil.copyfile(log, bench_out / f"session-{log.name}")
    shutil.rmtree(work, ignore_errors=True)
    summary = {"note": note, "stand_in": stand_in, "backends": ids,
               "missing": {**missing, **more_missing}, "budget_s": args.budget,
               "cpu_share": round(share, 2), "slowdown": round(slow, 2),
               "precision": _precision(ids, done), "phases": [vars(ph) for ph in done]}
    summary["wall_s"] = round(time.monotonic() - started, 1)
    (bench_out / "session.json").write_text(json.dumps(summary, indent=1, default=str))
    (bench_out / "session.md").write_text(session_page(summary))
    if args.archive is not None:
        written = {Path(f) for ph in done for f in ph.files} | {
            f for f in bench_out.rglob("*") if f.is_file()}
        print(f"packed {archive(written, out, args.archive)} files into {args.archive}")
    ok = all(ph.exit_code == 0 for ph in done)
    print(f"session: {summary['wall_s']:.0f} s of a {args.budget:.0f} s budget; "
          f"{'all phases succeeded' if ok else 'a phase failed'}; {bench_out / 'session.md'}")
    return 0 if ok else 1


def archive(files, root: Path, target: Path) -> int:
    """Pack `files` (those under `root`) into the .tar.gz `target`, named relative to `root`;
    the number packed."""
    import tarfile

    target.parent.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    names = sorted({Path(f).resolve() for f in files if Path(f).is_file()})
    packed = 0
    with tarfile.open(target, "w:gz") as tar:
        for f in names:
            if f.is_relative_to(root):
                tar.add(f, arcname=f.relative_to(root).as_posix())
                packed += 1
    return packed


def dry_run(wanted, ids, missing: dict, left: float, slow: float, folders: dict,
            archive_to: Path | None) -> str:
    """The plan, as the session would start it: each phase given its allotment in turn as if
    every phase before it used all of its own."""
    lines = [f"backends: {', '.join(ids) or '(none)'}"]
    lines += [f"not run: {b}: {why}" for b, why in missing.items()]
    if plugin_args():
        lines.append("the project is not installed: the children load -p conformance.plugin")
    for name in wanted:
        seconds = allot(name, left, wanted, slow)
        start = "" if seconds >= MIN_START * fixed(name, slow) else " (too little: not started)"
        lines.append(f"{name}: {seconds:.0f} s{start} -> {folders[name]}")
        left -= seconds
    if archive_to is not None:
        lines.append(f"archive: {archive_to}")
    return "\n".join(lines)


def session_page(summary: dict) -> str:
    rows = ["| phase | allotted | took | exit | result |", "|---|---|---|---|---|"]
    for ph in summary["phases"]:
        code = "stopped (124)" if ph["exit_code"] == 124 else (
            "not run" if ph["exit_code"] is None else ph["exit_code"])
        rows.append(f"| {ph['name']} | {ph['allotted']:.0f} s | {ph['seconds']:.0f} s | "
                    f"{code} | {ph['note']} |")
    precision = ["| backend | precision environment |", "|---|---|"] + [
        f"| `{b}` | " + ("— (no phase that reports it ran to its end)" if env is None else
                         "; ".join(f"{k} = {v}" for k, v in env.items()) or "— (no such settings)")
        + " |"
        for b, env in summary["precision"].items()]
    kind = "CPU stand-in" if summary["stand_in"] else "GPU"
    return "\n".join([
        f"# GPU session ({kind})", "", f"> {summary['note']}", "",
        f"Backends: {', '.join(f'`{b}`' for b in summary['backends'])}. Budget "
        f"{summary['budget_s']:.0f} s; the session took {summary['wall_s']:.0f} s. At its start "
        f"it got {100 * summary['cpu_share']:.0f} % of a core, so each phase's fixed seconds "
        f"(start-up, collection, reports) were planned × {summary['slowdown']:.1f}.", "",
        *rows, "", ("Conformance reports: `conformance/<backend>.md` beside this page; "
                    "benchmarks: `benchmarks.md` beside it; the tiny GPT: `tiny_gpt/`."
                    if summary["stand_in"] else
                    "Conformance reports: `docs/results/conformance/<backend>.md`; benchmarks: "
                    "`benchmarks.md` beside this page; the tiny GPT: "
                    "`docs/results/examples/tiny_gpt_torch-cuda.json`."), "",
        "## Precision environment", "",
        "As the conformance and benchmark runs set them (TF32 off, JAX's float32 matmuls at "
        "`\"highest\"`):", "", *precision, ""]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
