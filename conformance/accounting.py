"""Which test proves which identity: the suite's claims, read from a collection (no test runs).

    python -m conformance.accounting                 # every identity × tier without a test
    python -m conformance.accounting --chapter optim # one chapter
    python -m conformance.accounting --json          # identity × tier → the tests claiming it

A test claims identities through its `spec` marker (`identities=`, see plugin.py). This reads
those claims from a collection of the suite on the NumPy backend, so a gap shows in seconds,
before a full run; the report of a full run (`python -m conformance`) gives the same accounting
with outcomes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import spec


class _Claims:
    """A pytest plugin that keeps every collected test's (tier, identities)."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.equation_tiers: dict[tuple[str, str], list[str]] = defaultdict(list)

    def pytest_collection_finish(self, session) -> None:
        for item in session.items:
            props = dict(item.user_properties)
            if "spec_tier" not in props:
                continue
            tier = props["spec_tier"]
            test = item.nodeid.split("[", 1)[0]
            for eq in props["spec_equations"]:
                self.equation_tiers[(eq, tier)].append(test)
            for ident in props.get("spec_identities", ()):
                self.claims[(ident, tier)].append(test)


def collect() -> _Claims:
    """Collect the conformance suite on NumPy and return the claims of its tests."""
    import pytest

    claims = _Claims()
    suite = Path(__file__).resolve().parent
    code = pytest.main([str(suite), "--collect-only", "-q", "--backend", "numpy",
                        "-p", "no:cacheprovider", "-p", "no:xdist"], plugins=[claims])
    if code not in (0, 5):
        raise RuntimeError(f"collecting the suite failed (pytest exit status {code})")
    return claims


def gaps(claims: _Claims, chapter: str | None = None) -> list[str]:
    """Every declared identity × tier, and every equation × tier, that no test claims."""
    out = []
    for name, rec in spec.catalogue(chapter).items():
        out += [f"{name} tier {tier}" for tier in rec.tiers
                if not claims.equation_tiers.get((name, tier))]
        out += [f"{name}:{ident.key} tier {tier}" for ident in rec.identities
                for tier in ident.tiers if not claims.claims.get((f"{name}:{ident.key}", tier))]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.accounting",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", choices=list(spec.CHAPTERS), default=None)
    parser.add_argument("--json", action="store_true",
                        help="print identity × tier → the tests claiming it, as JSON")
    args = parser.parse_args(argv)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        claims = collect()
    if args.json:
        table = {f"{ident} {tier}": sorted(set(tests))
                 for (ident, tier), tests in sorted(claims.claims.items())}
        print(json.dumps(table, indent=1, ensure_ascii=False))
        return 0
    missing = gaps(claims, args.chapter)
    for line in missing:
        print(line)
    print(f"{len(missing)} equation or identity × tier cell(s) without a test", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
