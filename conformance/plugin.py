"""The pytest plugin of the conformance suite (loaded through the `pytest11` entry point).

It adds `--backend` (overriding `SPEC_BACKEND`), selects and prepares the backends (failing
fast on an unknown id, a missing library or a missing GPU), parametrises every test that asks
for `backend` over them, registers the Hypothesis profiles, prints the selection in the report
header, and tags each test report with the equations and tier it covers. With `SPEC_COMPILE=1`
the tests of tiers P and X see `spec.<equation>` compiled by the backend under test, and their
reports say which equations they ran compiled (see compiled.py).
"""

from __future__ import annotations

import math
import os

import hypothesis
import pytest

import backends
import spec

from . import compiled, settings, shard


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ai-math-spec", "AI Math Spec conformance")
    group.addoption(
        "--backend",
        default=None,
        help=f"backend id(s), comma-separated: {', '.join(backends.IDS)}, or a dotted module "
        f"name (overrides ${backends.ENV_VAR}; default numpy)",
    )
    group.addoption(
        "--thorough-shard", metavar="KEY", default=None,
        help="run only the Hypothesis tests, at the thorough profile, in an order drawn from "
        "KEY (CI passes the commit hash), until --shard-budget seconds are spent",
    )
    group.addoption("--shard-budget", metavar="SECONDS", type=float, default=600.0,
                    help="the thorough shard's time budget (default 600)")
    group.addoption("--shard-test-seconds", metavar="SECONDS", type=float, default=120.0,
                    help="the most one test runs in the thorough shard before it stops "
                    "drawing examples, unless it has failed (default 120)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "spec(*equations, tier, identities=(), identity=None): the equations and the "
        "conformance tier (S, P, D, R, X, E) a test covers, and the keys of the declared "
        "identities it proves ('key', or 'equation:key' where the equations share a key)",
    )
    settings.load_hypothesis_profile()
    if config.getoption("--thorough-shard") is not None:
        config.pluginmanager.register(shard.ThoroughShard(
            config.getoption("--thorough-shard"), config.getoption("--shard-budget"),
            config.getoption("--shard-test-seconds")),
            "ai-math-spec-thorough-shard")
    value = config.getoption("--backend") or os.environ.get(backends.ENV_VAR)
    try:
        selected = backends.selected(value)
        compile_mode = compiled.enabled()
        for backend in selected:
            backend.prepare_for_conformance()
            if compile_mode:
                backend.prepare_for_compiled_conformance()
    except (ValueError, backends.BackendUnavailable) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[settings.BACKENDS] = selected
    config.stash[settings.COMPILED] = compile_mode


def pytest_report_header(config: pytest.Config) -> list[str]:
    selected = config.stash[settings.BACKENDS]
    lines = [f"spec backends: {b.describe()}" for b in selected]
    profile = settings.profile_name()
    if config.getoption("--thorough-shard") is not None:
        profile = (f"{shard.THOROUGH} (the thorough shard {config.getoption('--thorough-shard')}"
                   f", {config.getoption('--shard-budget'):.0f} s)")
    shares = [f"{b.id} draws {b.hypothesis_share:.0%} of the examples" for b in selected
              if b.hypothesis_share < 1 and config.getoption("--thorough-shard") is None]
    lines.append(f"hypothesis profile: {profile}" + (f" ({'; '.join(shares)})" if shares else ""))
    lines.append(f"compiled: {compiled.describe(selected, config.stash[settings.COMPILED])}")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        selected = metafunc.config.stash[settings.BACKENDS]
        metafunc.parametrize("backend", selected, ids=[b.id for b in selected], scope="session")
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", settings.FLOAT_DTYPES, scope="session")


def identity_keys(equations: tuple, tier: str, keys) -> tuple[list[str], list[str]]:
    """Resolve a marker's identity keys to 'equation:key' names; also the problems found.

    A bare key names that identity of every listed equation that declares it in `tier`; it
    must name at least one. 'equation:key' names one, which must be declared in `tier`.
    """
    catalogue = spec.catalogue()
    resolved, problems = [], []
    for eq in equations:
        if eq not in catalogue:
            problems.append(f"{eq!r} is not a registered equation")
    for key in keys:
        eq, _, bare = key.rpartition(":")
        names = [eq] if eq else [e for e in equations if e in catalogue]
        hits = [n for n in names if n in catalogue
                and any(i.key == bare for i in catalogue[n].identities_in(tier))]
        if not hits:
            problems.append(f"identity {key!r} is not declared in tier {tier} by "
                            f"{', '.join(names) or 'any listed equation'}")
        resolved += [f"{n}:{bare}" for n in hits]
    return sorted(set(resolved)), problems


def _marker_identities(marker) -> tuple:
    keys = marker.kwargs.get("identities", ())
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if marker.kwargs.get("identity"):
        keys += (marker.kwargs["identity"],)
    return keys


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    problems = []
    for item in items:
        marker = item.get_closest_marker("spec")
        if marker is None:
            continue
        tier = marker.kwargs.get("tier", "")
        identities, found = identity_keys(tuple(marker.args), tier, _marker_identities(marker))
        problems += [f"{item.nodeid}: {p}" for p in found]
        item.user_properties.append(("spec_equations", tuple(marker.args)))
        item.user_properties.append(("spec_tier", tier))
        item.user_properties.append(("spec_identities", tuple(identities)))
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        item.user_properties.append(("spec_backend", backend.id if backend else None))
    if problems:
        raise pytest.UsageError("spec markers name unknown identities:\n  "
                                + "\n  ".join(sorted(set(problems))))


@pytest.fixture(scope="session")
def xp(backend):
    """The Array API namespace of the backend under test."""
    return backend.xp


@pytest.fixture(autouse=True)
def _dtype_supported(request):
    if "dtype" in request.fixturenames and "backend" in request.fixturenames:
        backend = request.getfixturevalue("backend")
        dtype = request.getfixturevalue("dtype")
        if dtype not in backend.float_dtypes:
            pytest.skip(f"backend {backend.id} has no {dtype}")


_COMPILED_TABLE = pytest.StashKey[compiled.CompiledEquations]()


@pytest.fixture(autouse=True)
def _compiled_equations(request):
    """With SPEC_COMPILE=1, `spec.<equation>` is the one compiled by the backend under test
    for the length of a P or X test, and the plain function again after it."""
    marker = request.node.get_closest_marker("spec")
    tier = marker.kwargs.get("tier") if marker else None
    if not (request.config.stash[settings.COMPILED] and tier in compiled.TIERS
            and "backend" in request.fixturenames):
        yield
        return
    table = compiled.CompiledEquations(request.getfixturevalue("backend"), tier)
    request.node.stash[_COMPILED_TABLE] = table
    with pytest.MonkeyPatch.context() as patch:
        for name, fn in table.items():
            patch.setattr(spec, name, fn)
        yield
    table.release()


def _hypothesis_share(item: pytest.Item) -> float:
    """The share of the profile's examples a Hypothesis test draws on its backend (explicit
    examples all run); 1 outside the thorough shard's own profile, which explores fully."""
    if item.config.getoption("--thorough-shard") is not None:
        return 1.0
    backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
    return getattr(backend, "hypothesis_share", 1.0)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item):
    """Run a Hypothesis test with its backend's share of the examples, and keep its settings
    as @given left them from one call to the next; tag the report of a compiled-mode test with
    the equations it ran compiled.

    Hypothesis's pytest plugin, on every call of a parametrised Hypothesis test, replaces the
    test function's settings with new settings whose parent is the old ones
    (`_hypothesis_pytestplugin.py`, the `differing_executors` work-around for
    HypothesisWorks/hypothesis#3733). The function is shared by all its parametrisations, so
    the chain grows by one a call: `test_property`, with about 2,500 parametrisations, passed
    Python's recursion limit in a worker after about 950 calls, and every later call failed
    with a RecursionError (1,342 failures in one run). This wrapper runs outside Hypothesis's
    (tryfirst) and puts the settings back after each call.
    """
    fn = getattr(item, "obj", None)
    fn = getattr(fn, "__func__", fn)
    saved = getattr(fn, "_hypothesis_internal_use_settings", None)
    share = _hypothesis_share(item)
    if saved is not None and share < 1:
        # the function is shared by every backend's item: the backend's share is set for
        # this call only, and the settings put back below
        fn._hypothesis_internal_use_settings = hypothesis.settings(
            saved, max_examples=max(1, math.ceil(saved.max_examples * share)))
    try:
        return (yield)
    finally:
        if saved is not None:
            fn._hypothesis_internal_use_settings = saved
        if _COMPILED_TABLE in item.stash:
            table = item.stash[_COMPILED_TABLE]
            item.user_properties.append(("spec_compiled", sorted(table.calls)))
