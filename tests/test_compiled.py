"""Compiled mode (`SPEC_COMPILE=1`): tiers P and X see the equations through `backend.compile`,
nothing else changes, and the report says the run was compiled. Also `static_kwargs_compile`,
which lets `jax.jit` take the equations' non-array arguments.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import textwrap

import numpy as np
import pytest

import backends
import spec
from backends._base import static_kwargs_compile
from backends.array_api_strict import ArrayApiStrictBackend
from backends.numpy import NumpyBackend
from conformance import compiled, report
from spec._registry import Limit

PLAIN_SOFTMAX = spec.softmax


def _counting(cls, backend_id):
    """A backend of class `cls` whose `compile` wraps the function and counts its calls."""

    class Counting(cls):
        id = backend_id
        compiler = "counting"

        def __init__(self) -> None:
            super().__init__()
            self.compiled: list[str] = []
            self.calls = 0
            self.released = 0

        def compile(self, fn):
            self.compiled.append(fn.__name__)

            @functools.wraps(fn)
            def counted(*args, **kwargs):
                self.calls += 1
                return fn(*args, **kwargs)

            return counted

        def release_compiled(self):
            self.released += 1

    return Counting()


# --- the switch ------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "on"), [(None, False), ("", False), ("0", False),
                                          ("1", True), ("true", True), (" ON ", True)])
def test_spec_compile_values(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv(compiled.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(compiled.ENV_VAR, value)
    assert compiled.enabled() is on


def test_an_unclear_spec_compile_value_is_an_error(monkeypatch):
    monkeypatch.setenv(compiled.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="SPEC_COMPILE must be 1"):
        compiled.enabled()


# --- the compiled equations ------------------------------------------------------------------
def test_backend_arrays_go_through_compile_once_per_equation():
    backend = _counting(ArrayApiStrictBackend, "array_api_strict")
    table = compiled.CompiledEquations(backend, "P")
    x = backend.asarray(np.array([1.0, 2.0, 3.0]))
    for _ in range(3):
        got = table["softmax"](x, axis=-1)
    np.testing.assert_allclose(backend.to_numpy(got), PLAIN_SOFTMAX(np.array([1.0, 2.0, 3.0])))
    assert backend.compiled == ["softmax"] and backend.calls == 3
    assert table.calls == {"softmax": 3}


def test_calls_without_backend_arrays_stay_plain():
    """Host NumPy references and plain numbers are not the backend's: nothing to compile."""
    backend = _counting(ArrayApiStrictBackend, "array_api_strict")
    table = compiled.CompiledEquations(backend, "P")
    table["softmax"](np.array([1.0, 2.0]))
    assert table["he_normal_std"](4) == spec.he_normal_std(4)
    table["sinusoidal_positions"](2, 4, xp=np, dtype=np.float32)  # a dtype class: no array
    assert backend.compiled == [] and backend.calls == 0 and not table.calls


def test_a_call_naming_the_backend_namespace_is_compiled():
    """Equations that build arrays from sizes (causal_mask(n, m, xp=…)) compile too."""
    backend = _counting(ArrayApiStrictBackend, "array_api_strict")
    table = compiled.CompiledEquations(backend, "X")
    mask = table["causal_mask"](2, 3, xp=backend.xp)
    assert backend.compiled == ["causal_mask"] and tuple(mask.shape) == (2, 3)


def test_arrays_inside_parameter_lists_count():
    backend = _counting(ArrayApiStrictBackend, "array_api_strict")
    table = compiled.CompiledEquations(backend, "X")
    w = backend.asarray(np.eye(2))
    table["l2_penalty"]([w, w], weight=0.5)
    assert backend.compiled == ["l2_penalty"]


def test_a_documented_compiler_limit_skips_with_its_reason(monkeypatch):
    backend = _counting(ArrayApiStrictBackend, "array_api_strict")
    limit = Limit("array_api_strict", "the compiler cannot", "https://example.org/issue",
                  tiers="P", compiled=True)
    monkeypatch.setattr(spec.catalogue()["softmax"], "limits", (limit,))
    x = backend.asarray(np.array([1.0, 2.0]))
    with pytest.raises(pytest.skip.Exception, match=r"the compiler cannot \(https://example"):
        compiled.CompiledEquations(backend, "P")["softmax"](x)
    compiled.CompiledEquations(backend, "X")["softmax"](x)  # a tier the limit does not name
    assert backend.compiled == ["softmax"]


def test_compiler_limits_apply_to_compiled_runs_only():
    limit = Limit("jax", "r", "https://example.org", tiers="X", note="n", compiled=True)
    assert limit.applies("jax", "X", "n", compiled=True)
    assert not limit.applies("jax", "X", "n")
    eager = Limit("jax", "r", "https://example.org", tiers="X")
    assert eager.applies("jax", "X", "any", compiled=True) and eager.applies("jax", "X", "any")


# --- the plugin: what a P or X test sees -----------------------------------------------------
_PROBE = textwrap.dedent("""
    import numpy as np
    import pytest

    import spec

    PLAIN = spec.softmax
    COMPILE = {compile_mode}


    @pytest.mark.spec("softmax", tier="P")
    def test_p(backend):
        assert (spec.softmax is not PLAIN) is COMPILE
        spec.softmax(backend.asarray(np.array([1.0, 2.0])))


    @pytest.mark.spec("softmax", tier="X")
    def test_x(backend):
        assert (spec.softmax is not PLAIN) is COMPILE
        spec.softmax(backend.asarray(np.array([1.0, 2.0])))


    @pytest.mark.spec("softmax", tier="S")
    def test_s(backend):
        assert spec.softmax is PLAIN


    @pytest.mark.spec("softmax", tier="P")
    def test_p_failing(backend):
        spec.softmax(backend.asarray(np.array([1.0, 2.0])))
        raise AssertionError("fails on purpose")


    def test_after():
        assert spec.softmax is PLAIN
""")


class _Properties:
    """A pytest plugin that keeps the outcome and user properties of each test's call."""

    def __init__(self) -> None:
        self.props: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call":
            props = dict(report.user_properties, outcome=report.outcome)
            self.props[report.nodeid.split("::")[-1]] = props


def _run_probe(tmp_path, monkeypatch, *, compile_mode: bool):
    backend = _counting(NumpyBackend, "numpy")
    monkeypatch.setitem(backends._cache, "numpy", backend)
    monkeypatch.setenv(compiled.ENV_VAR, "1" if compile_mode else "0")
    probe = tmp_path / f"test_probe_{tmp_path.name}.py"  # a module name of its own
    probe.write_text(_PROBE.format(compile_mode=compile_mode))
    props = _Properties()
    code = pytest.main([str(probe), "-q", "-p", "no:cacheprovider", "--backend", "numpy",
                        "--import-mode=importlib"], plugins=[props])
    return backend, props.props, code


def test_compiled_mode_hands_p_and_x_tests_the_compiled_equations(tmp_path, monkeypatch):
    backend, props, code = _run_probe(tmp_path, monkeypatch, compile_mode=True)
    passed = {name for name, p in props.items() if p["outcome"] == "passed"}
    assert code == pytest.ExitCode.TESTS_FAILED  # test_p_failing, and only it
    assert passed == {"test_p[numpy]", "test_x[numpy]", "test_s[numpy]", "test_after"}
    # compiled once per test, and released after it (jax keeps every compilation otherwise)
    assert backend.compiled == ["softmax"] * 3 and backend.calls == 3 and backend.released == 3
    assert props["test_p[numpy]"]["spec_compiled"] == ["softmax"]
    assert props["test_x[numpy]"]["spec_compiled"] == ["softmax"]
    assert "spec_compiled" not in props["test_s[numpy]"]
    assert spec.softmax is PLAIN_SOFTMAX


def test_compiled_mode_restores_spec_after_a_failing_test(tmp_path, monkeypatch):
    _, props, _ = _run_probe(tmp_path, monkeypatch, compile_mode=True)
    assert props["test_p_failing[numpy]"]["outcome"] == "failed"
    assert props["test_p_failing[numpy]"]["spec_compiled"] == ["softmax"]
    assert props["test_after"]["outcome"] == "passed"  # it checks that spec is plain again
    assert spec.softmax is PLAIN_SOFTMAX


def test_eager_mode_leaves_spec_alone(tmp_path, monkeypatch):
    backend, props, code = _run_probe(tmp_path, monkeypatch, compile_mode=False)
    passed = {name for name, p in props.items() if p["outcome"] == "passed"}
    assert code == pytest.ExitCode.TESTS_FAILED
    assert passed == {"test_p[numpy]", "test_x[numpy]", "test_s[numpy]", "test_after"}
    assert backend.compiled == [] and backend.calls == 0 and backend.released == 0
    assert all("spec_compiled" not in p for p in props.values())


def test_an_unclear_spec_compile_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(compiled.ENV_VAR, "maybe")
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    code = pytest.main([str(tmp_path), "-q", "-p", "no:cacheprovider"])
    assert code == pytest.ExitCode.USAGE_ERROR


# --- the report ------------------------------------------------------------------------------
def _record(tier, compiled_names=None, equation="softmax"):
    record = {"nodeid": f"t::{tier}", "equations": [equation], "tier": tier,
              "backend": "numpy", "outcome": "passed", "message": ""}
    if compiled_names is not None:
        record["compiled"] = compiled_names
    return record


def test_the_report_says_the_run_was_compiled():
    backend = _counting(NumpyBackend, "numpy")
    rep = report.build([_record("P", ["softmax"]), _record("X", [], equation="relu")],
                       [backend], exit_code=0, profile="ci", compiled=True)
    assert rep["compiled"] is True and rep["backends"][0]["compiled"] == "counting"
    assert rep["matrix"]["numpy"]["softmax"]["P"]["compiled"] is True
    assert rep["matrix"]["numpy"]["relu"]["X"]["compiled"] is False
    text = report.markdown(rep)
    assert "Compiled: **yes** (`SPEC_COMPILE=1`)" in text and "`numpy` counting" in text
    assert "Ran eagerly in this compiled run" in text and "`relu` X" in text


def test_the_report_says_the_run_was_eager():
    rep = report.build([_record("P")], [backends.get("numpy")], exit_code=0, profile="ci")
    assert rep["compiled"] is False and rep["backends"][0]["compiled"] == "eager"
    assert "compiled" not in rep["matrix"]["numpy"]["softmax"]["P"]
    text = report.markdown(rep)
    assert "Compiled: no — eager run" in text and "Ran eagerly" not in text


# --- static_kwargs_compile: what a tracing compiler sees -------------------------------------
class _FakeJit:
    """Stands in for jax.jit: records each function it compiles and the arguments it traces."""

    def __init__(self) -> None:
        self.compiled = 0
        self.traced: list = []

    def __call__(self, fn):
        self.compiled += 1

        def run(*args):
            self.traced.append(args)
            return fn(*args)

        return run


def _options(*args, **kwargs):
    return args, kwargs


def test_non_array_arguments_are_static_and_arrays_traced():
    jit = _FakeJit()
    f = static_kwargs_compile(jit, _options)
    x = np.ones(2)
    params = {"w": np.zeros(2)}
    args, kwargs = f(x, 3, None, params, axis=0, mask=x)
    assert args[:3] == (x, 3, None) and args[3] is params and kwargs == {"axis": 0, "mask": x}
    (arrays, array_kwargs), = jit.traced
    assert arrays == (x, params) and array_kwargs == {"mask": x}


def test_static_arguments_key_the_cache_without_conflating_values():
    jit = _FakeJit()
    f = static_kwargs_compile(jit, _options)
    x = np.ones(2)
    for _ in range(2):
        f(x, 2, scale=1.0)
    assert jit.compiled == 1
    for n, scale in [(2, 1), (2, True), (2, -0.0), (2, 0.0), (3, 1.0)]:
        got = f(x, n, scale=scale)[1]["scale"]
        assert type(got) is type(scale) and math.copysign(1, got) == math.copysign(1, scale)
    assert jit.compiled == 6
    assert f(x, [1, 2], scale=1.0)[0][1] == [1, 2]  # a list: hashed by its contents
    assert jit.compiled == 7


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_compiles_equations_with_sizes_and_parameter_lists():
    backend = backends.get("jax")
    mask = backend.compile(spec.causal_mask)(3, 4, xp=backend.xp, device=backend.device)
    np.testing.assert_array_equal(backend.to_numpy(mask), spec.causal_mask(3, 4, xp=np))
    params = [(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.ones(1))]
    x = np.array([[1.0, -2.0]])
    on_jax = [(backend.asarray(w), backend.asarray(b)) for w, b in params]
    out, _ = backend.compile(spec.mlp_forward)(backend.asarray(x), on_jax, activation="relu")
    np.testing.assert_allclose(backend.to_numpy(out), spec.mlp_forward(x, params)[0])
    no_bias = backend.compile(spec.dense)(backend.asarray(x), on_jax[0][0], None)
    np.testing.assert_allclose(backend.to_numpy(no_bias), x)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_makes_reaching_the_recompile_limit_an_error(monkeypatch):
    """Past the limit torch.compile would quietly run eager code: a compiled run forbids that."""
    config = importlib.import_module("torch._dynamo.config")
    for key in ("recompile_limit", "accumulated_recompile_limit", "fail_on_recompile_limit_hit",
                "suppress_errors"):
        monkeypatch.setattr(config, key, getattr(config, key))
    backends.get("torch").prepare_for_compiled_conformance()
    assert config.fail_on_recompile_limit_hit is True and config.suppress_errors is False
    assert config.recompile_limit >= 512
