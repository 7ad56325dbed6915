"""`python -m conformance --candidate EQ=module:function`: report cards from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["run_candidates"]


def run_candidates(args, selected) -> int:
    """Check each --candidate on each selected backend; write the cards into --report.
    Exit status: 0 if every card passed, 1 if one failed, 2 for a usage error."""
    from . import check, load_candidate

    targets = []
    for item in args.candidate:
        equation, sep, target = item.partition("=")
        if not sep or not equation or not target:
            print(f"error: --candidate takes EQUATION=package.module:function, got {item!r}",
                  file=sys.stderr)
            return 2
        try:
            fn = load_candidate(target)
        except (ValueError, TypeError, ImportError, AttributeError) as exc:
            print(f"error: --candidate {item}: {exc}", file=sys.stderr)
            return 2
        targets.append((equation.strip(), target, fn))
    dtypes = tuple(d.strip() for d in args.dtypes.split(",")) if args.dtypes else None
    out: Path = args.report
    failed = 0
    for equation, target, fn in targets:
        for backend in selected:
            try:
                card = check(fn, equation, backend=backend, dtypes=dtypes,
                             profile=args.profile or "ci", variant=args.variant, name=target)
            except (KeyError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            stem = f"card-{equation}-{backend.id.replace(':', '-')}"
            (out / f"{stem}.json").write_text(card.to_json() + "\n", encoding="utf-8")
            (out / f"{stem}.md").write_text(card.to_markdown() + "\n", encoding="utf-8")
            if not args.quiet:
                print(card.to_markdown())
            verdict = "passed" if card.passed else "FAILED"
            print(f"{target} as {equation} on {backend.id}: {verdict}; card written: "
                  f"{out / stem}.json, .md")
            failed += not card.passed
    return 1 if failed else 0
