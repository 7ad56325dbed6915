"""`python -m conformance`: run the conformance suite on chosen backends and write the report.

    python -m conformance                          # numpy (or $SPEC_BACKEND), profile dev
    python -m conformance --backend numpy,torch,jax --report out/ --profile ci
    python -m conformance --backend torch -- -k softmax -x      # extra pytest arguments
    python -m conformance --backend torch,jax --compile  # tiers P, X compiled (SPEC_COMPILE=1)
    python -m conformance --candidate softmax=mypkg.kernels:softmax --backend torch  # a card

Prints the Markdown matrix (equation × tier per backend) and writes report.json, report.md
and one <backend>.json/.md per backend into --report (default ./conformance-report).
With --candidate EQ=module:function the suite does not run: the checker writes the report
card of that implementation (card-EQ-BACKEND.json/.md) and exits 1 if it fails.
The exit status is 1 if any test failed, or, in a complete run (nothing deselected by `-k`,
`-m`, `--lf`, …), if an equation lacks a test in a tier that applies to it or a declared
identity lacks a test in a tier that proves it; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import backends

from . import report as report_mod


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Prove the identities of the AI Math Spec on one or more array backends.",
    )
    p.add_argument("--backend", default=None,
                   help=f"backend id(s), comma-separated (default: ${backends.ENV_VAR} or "
                   f"numpy). Ids: {', '.join(backends.IDS)}, or a dotted module name.")
    p.add_argument("--report", default="conformance-report", type=Path,
                   help="directory for report.json / report.md (default: %(default)s)")
    p.add_argument("--profile", default=None, choices=("ci", "dev", "thorough"),
                   help="Hypothesis profile (default: $HYPOTHESIS_PROFILE or dev)")
    p.add_argument("--compile", action="store_true",
                   help="run tiers P and X through each backend's compile (torch.compile, "
                   "jax.jit) to show compiled == eager (default: $SPEC_COMPILE)")
    p.add_argument("--quiet", action="store_true", help="do not print the Markdown report")
    p.add_argument("--candidate", action="append", default=[], metavar="EQ=MODULE:FUNCTION",
                   help="check your own implementation of equation EQ instead of running the "
                   "suite: write its report card (card-EQ-BACKEND.json/.md) into --report and "
                   "exit 1 if it fails (see conformance/checker); repeatable")
    p.add_argument("--variant", default=None,
                   help="with --candidate: the spec's named form the candidate computes "
                   "(default: the spec's default form)")
    p.add_argument("--dtypes", default=None,
                   help="with --candidate: comma-separated float dtypes (default: every float "
                   "dtype of the backend)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after `--`")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    value = args.backend if args.backend is not None else os.environ.get(backends.ENV_VAR)
    try:
        selected = backends.selected(value)
    except (ValueError, backends.BackendUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if problem := _report_dir_problem(args.report):
        print(f"error: --report {args.report}: {problem}", file=sys.stderr)
        return 2
    if args.candidate:
        from .checker.cli import run_candidates

        return run_candidates(args, selected)
    if args.variant or args.dtypes:
        print("error: --variant and --dtypes go with --candidate", file=sys.stderr)
        return 2
    if args.profile:
        os.environ["HYPOTHESIS_PROFILE"] = args.profile

    import pytest

    from . import compiled, settings

    if args.compile:
        os.environ[compiled.ENV_VAR] = "1"
    try:
        compile_mode = compiled.enabled()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    collector = report_mod.Collector()
    suite = Path(__file__).resolve().parent
    ids = ",".join(b.id for b in selected)
    start = time.perf_counter()
    exit_code = pytest.main(
        [str(suite), "--backend", ids, "-q", "-p", "no:cacheprovider",
         "-W", "ignore::RuntimeWarning",
         # (the packages of this distribution are imported before pytest starts: see
         # pyproject.toml's filterwarnings, which a run outside the clone does not read)
         "-W", "ignore:Module already imported:pytest.PytestAssertRewriteWarning",
         *args.pytest_args],
        plugins=[collector],
    )
    elapsed = time.perf_counter() - start
    rep = report_mod.build(collector.records, selected, exit_code=int(exit_code),
                           profile=settings.profile_name(), compiled=compile_mode,
                           complete=collector.complete)
    rep["wall_time_s"] = round(elapsed, 1)
    written = report_mod.write(rep, args.report)
    if not args.quiet:
        print()
        print(report_mod.markdown(rep))
    print(f"report written: {', '.join(str(p) for p in written[:2])} (+{len(written) - 2} "
          f"per-backend files); {elapsed:.0f} s")
    return exit_status(rep, int(exit_code))


def _report_dir_problem(directory: Path) -> str | None:
    """Why the report cannot be written to `directory` (checked before the suite runs)."""
    if directory.exists() and not directory.is_dir():
        return "is a file, not a directory"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot be created ({exc.strerror or exc})"
    if not os.access(directory, os.W_OK):
        return "is not writable"
    return None


def exit_status(rep: dict, pytest_exit: int) -> int:
    """The run's exit status: pytest's, or 1 for what has no test in a complete run."""
    missing = report_mod.gaps(rep)
    if missing:
        shown = "\n  ".join(missing[:20]) + (f"\n  … and {len(missing) - 20} more"
                                              if len(missing) > 20 else "")
        print(f"error: {len(missing)} equation or identity × tier cell(s) have no test "
              f"(⚠️ in the report):\n  {shown}", file=sys.stderr)
        return 1
    if not rep.get("complete", True):
        print("note: a partial run (tests were deselected): completeness was not checked")
    return pytest_exit


if __name__ == "__main__":
    sys.exit(main())
