"""A time budget for a benchmark run: which families, sizes and rounds fit in SECONDS.

``python -m benchmarks --budget SECONDS`` (or ``pytest benchmarks --bench-budget SECONDS``)
does not run the whole sweep. It plans, at collection time, then keeps to the plan while it
runs:

1. **Priorities.** Every benchmark (case × size × precision × mode × backend) gets a rank:
   first the families the project's targets judge (softmax, log_softmax, logsumexp,
   softmax_cross_entropy, layer_norm, rms_norm, silu, gelu) at the size that decides the
   targets (2²² elements on a CPU, 2²⁶ on a GPU, above its L2 cache), float32, every mode and
   backend; then the other families at that size; then bfloat16 at that size; then the other
   sizes, smallest first (they draw the throughput curves and the crossover).
2. **Costs.** A short probe per backend (a copy, a small matmul, the per-call overhead of an
   eager equation) feeds a cost model: building the inputs, compiling (torch.compile is slow
   on a CPU), two warm-up calls, the bandwidth measurement at the case's byte count, and at
   least three timed rounds; on a shared machine the fixed costs (imports, compiling,
   plotting) are scaled by the share of a core the run gets (`cpu_share`), as the probe's
   kernel times already are. Benchmarks are planned in rank order while their estimated cost
   fits; the rest are spares. A benchmark one call of which would take more than a twentieth
   of the budget is deselected.
3. **Running.** The plan runs first. Each benchmark's rounds share out the time left (3 to 100
   rounds), and the cost estimates are corrected by what the finished benchmarks actually
   took: a benchmark that would now overrun the deadline is skipped with that reason. Then
   the spares, in rank order, each if the time left covers it (so a plan whose estimates were
   pessimistic still fills its budget); the others are counted as left out by the budget.
   What remains at the end is reserved for writing the page and its plots.

The run so lands within about 10 % of the budget; the page says what was planned, what was
left out, and how long the run took. The one thing the plan cannot shorten is what comes
before it (imports, collecting the benchmarks, the probes) and the page after: on a machine
whose other jobs leave this run a tenth of a core these alone can outrun a short budget. The
plan then runs nothing, and the page says that the start-up alone took longer than the
budget left for benchmarks.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

#: where a budgeted run keeps its `Budget` (the pytest config's stash)
STASH: pytest.StashKey = pytest.StashKey()
#: the families the targets judge (the CPU targets of the project; the GPU targets are a subset)
TARGET_FAMILIES = ("softmax", "log_softmax", "logsumexp", "softmax_cross_entropy", "layer_norm",
                   "rms_norm", "silu", "gelu")
#: the size (elements of the main input) that decides the targets
DECISIVE = {"cpu": 2**22, "gpu": 2**26}
#: rounds of one benchmark under a budget
MIN_ROUNDS, MAX_ROUNDS = 3, 100
#: seconds of the page per family plotted (its PNG) on a quiet machine
PLOT_SECONDS = 0.4


def decisive_size(gpu: bool) -> int:
    return DECISIVE["gpu" if gpu else "cpu"]


def render_reserve(cases: int, slow: float = 1.0) -> float:
    """Seconds kept after the last benchmark: pytest's wrap-up (the JSON, the summary), the
    page and its plots (one PNG per family and an overview)."""
    return (3.0 + PLOT_SECONDS * cases) * slow


def cpu_share(seconds: float = 0.3) -> float:
    """The share of one core this process gets now: CPU time over wall time of a busy loop
    (1.0 on a quiet machine; a third or less on one shared with other jobs)."""
    wall, cpu = time.perf_counter(), time.process_time()
    x = 0
    while time.perf_counter() - wall < seconds:
        for i in range(10_000):
            x += i
    return min(1.0, (time.process_time() - cpu) / (time.perf_counter() - wall))


def slowdown(share: float) -> float:
    """How much longer fixed costs (imports, compiling, plotting) take than on a quiet
    machine, from `cpu_share`: share^-0.8, between 1 and 4. (Fitted on the project's 2-core VM
    shared with other jobs, at a quarter to two fifths of a core: a benchmark's set-up and the
    page slowed down a little less than 1/share, conformance's start-up a little more; part
    of each is waiting on memory and disk, which the other jobs slow down less.)"""
    return min(4.0, max(1.0, max(share, 1e-3) ** -0.8))


@dataclass
class Probe:
    """What a backend costs: GB/s of a copy, FLOP/s of a matmul, seconds of one eager op."""

    gb_per_s: float
    flop_per_s: float
    op_seconds: float


def probe(backend) -> Probe:
    """Measure a backend in well under a second (the first call of each includes warm-up)."""
    import spec

    from .cases import _put
    from .roofline import _primitive, _seconds_best

    copy = _primitive(backend, "copy", 2**22, "float32")
    copy_s = _seconds_best(backend, copy, budget=0.05, low=2, high=10)
    rng = np.random.default_rng(0)
    n = 512
    a = _put(backend, rng.standard_normal((n, n), dtype=np.float32), "float32")
    mm_s = _seconds_best(backend, lambda: backend.xp.matmul(a, a), budget=0.05, low=2, high=10)
    z = _put(backend, rng.standard_normal((4, 256), dtype=np.float32), "float32")
    with spec.value_checks(False):
        soft_s = _seconds_best(backend, lambda: spec.softmax(z), budget=0.05, low=2, high=20)
    return Probe(2 * 2**22 * 4 / copy_s / 1e9, 2.0 * n**3 / mm_s, soft_s / 6)


# --------------------------------------------------------------------------- the cost model
def _eager_passes(case: str, backend) -> float:
    """Roughly how many times the eager spec sweeps its working set."""
    if case == "gelu":
        # with the namespace's own erfc (spec/_special.py): seven passes in the next wider
        # dtype, erfc itself costing some thirty float32 passes' time on a CPU (NumPy's 330 ms
        # against layer_norm's 100 ms at 2^22); else Cody's erf from the standard alone
        native = backend.library in ("torch", "cupy") or (
            backend.library == "numpy" and _has_scipy())
        return 30 if native else 45
    return {"silu": 8, "sigmoid": 6, "softmax": 8, "log_softmax": 8, "logsumexp": 6,
            "softmax_cross_entropy": 12, "layer_norm": 12, "rms_norm": 8, "rope": 16,
            "adam_step": 6}.get(case, 10)


def _has_scipy() -> bool:
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        return False
    return True


def _scores(case: str, n: int) -> float:
    """Elements of the attention scores the eager code materialises (0 for other cases)."""
    if case.startswith("scaled_dot_product_attention"):
        t = min(2048, n // 64)
        return n // (t * 64) * t * t
    if case == "multi_head_attention":
        t = min(1024, n // 512)
        return max(1, n // (t * 512)) * 8 * t * t
    if case == "transformer_block":
        t = min(512, n // 512)
        return max(1, n // (t * 512)) * 8 * t * t
    return 0.0


def call_seconds(case, n: int, precision: str, mode: str, backend, probe_: Probe,
                 nbytes: float, flops: float) -> float:
    """The estimated time of one call."""
    from .cases import itemsize

    size = itemsize(precision)
    if mode == "eager":
        passes = _eager_passes(case, backend)
        moved = passes * nbytes + 6 * _scores(case, n) * size
        ops = 3 * passes
    else:
        moved = 1.5 * nbytes + (2 * _scores(case, n) * size if mode == "compiled" else 0)
        ops = 2
    peak = probe_.flop_per_s * (2 if precision == "bfloat16" and backend.is_gpu else 1)
    return ops * probe_.op_seconds + moved / (probe_.gb_per_s * 1e9) + flops / peak


def compile_seconds(backend, mode: str, first: bool) -> float:
    if mode != "compiled":
        return 0.0
    if backend.library == "torch":
        return (30.0 if first else 12.0) if not backend.is_gpu else (20.0 if first else 8.0)
    if backend.library == "jax":
        return 2.0
    return 0.0


def build_seconds(nbytes: float, probe_: Probe) -> float:
    """Random host inputs (≈ 40 ns per element) and the move to the device."""
    return 1e-8 * nbytes + nbytes / (probe_.gb_per_s * 1e9) + 0.01


def bandwidth_seconds(nbytes: float, probe_: Probe) -> float:
    """The roofline's bandwidth measurement at one byte count (budget mode: ≥ 3 rounds)."""
    return 0.2 + 16 * nbytes / (probe_.gb_per_s * 1e9)


# --------------------------------------------------------------------------- the plan
LEFT_OUT = "left out by the time budget"
TOO_LONG = "one call would take more than a twentieth of the time budget"
RAN_SHORT = "the time budget ran short: skipped when it ran"


@dataclass
class Item:
    nodeid: str
    case: str
    size: int
    precision: str
    mode: str
    backend: object
    rank: tuple
    fixed: float  # build, compile, warm-up, bandwidth measurement
    call: float  # one call
    #: in the plan (False: a spare, run at the end only if the plan left time for it)
    planned: bool = True

    @property
    def cost(self) -> float:
        return self.fixed + (3 + MIN_ROUNDS) * self.call  # 2 warm-ups and the single timing


def rank(case: str, size: int, precision: str, mode: str, backend, gpu_run: bool) -> tuple:
    decisive = decisive_size(gpu_run)
    target = case in TARGET_FAMILIES
    if size == decisive:
        tier = (0 if target else 1) if precision == "float32" else (2 if target else 3)
    else:
        tier = 4 if precision == "float32" else 5
    modes = ("native", "compiled", "eager")  # a ratio needs native; compiled is the target
    return (tier, size, 0 if target else 1, case, modes.index(mode) if mode in modes else 3,
            backend.id)


@dataclass
class Budget:
    """The plan of a budgeted run and its bookkeeping while it runs.

    The planned benchmarks run first, in rank order; the spares (what did not fit the plan)
    follow in rank order, each run only if the time left covers it, so a run whose estimates
    were pessimistic still fills its budget."""

    seconds: float
    deadline: float  # time.monotonic() by which the benchmarks must be done
    started: float
    reserve: float
    #: fixed costs × this (`slowdown`: the machine is shared)
    slow: float = 1.0
    #: the share of a core the run got as it planned (`cpu_share`)
    share: float = 1.0
    #: seconds from the budget's start to the plan: imports, collection, the probes
    start_up: float = 0.0
    planned: list[Item] = field(default_factory=list)
    spare: list[Item] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    skipped_at_run: dict[str, int] = field(default_factory=dict)
    #: measured / estimated fixed cost, per (backend id, mode): corrects later estimates
    correction: dict[tuple, list[float]] = field(default_factory=dict)
    done: set = field(default_factory=set)
    #: the families on the page so far (each spare of a new family costs a plot more)
    cases: set = field(default_factory=set)
    #: benchmarks deselected at collection (one call too long for the budget), by reason
    deselected: dict[str, int] = field(default_factory=dict)
    #: benchmarks deselected at collection because they cannot run here at all, by reason
    #: (the reasons they would have been skipped with)
    not_runnable: dict[str, int] = field(default_factory=dict)
    _index: dict = field(default_factory=dict, repr=False)
    _order: list = field(default_factory=list, repr=False)

    def index(self) -> None:
        order = self.planned + self.spare
        self._index = {item.nodeid: k for k, item in enumerate(order)}
        self._order = order
        self.cases = {i.case for i in self.planned}

    def _scale(self, item: Item) -> float:
        seen = self.correction.get((item.backend.id, item.mode))
        return max(0.5, statistics.median(seen)) if seen else 1.0

    def cost_now(self, item: Item) -> float:
        """The item's cost, its fixed part corrected by what finished benchmarks took."""
        return item.fixed * self._scale(item) + (3 + MIN_ROUNDS) * item.call

    def find(self, nodeid: str) -> Item | None:
        k = self._index.get(nodeid)
        return None if k is None else self._order[k]

    def later(self, nodeid: str) -> list[Item]:
        """The benchmarks after `nodeid` in the run's order that have not run."""
        k = self._index.get(nodeid, -1)
        return [i for i in self._order[k + 1:] if i.nodeid not in self.done]

    def should_skip(self, nodeid: str) -> str | None:
        item = self.find(nodeid)
        if item is None:
            return None
        extra = 0.0 if item.planned or item.case in self.cases else PLOT_SECONDS * self.slow
        if self.cost_now(item) + extra > self.deadline - time.monotonic():
            reason = RAN_SHORT if item.planned else LEFT_OUT
            counts = self.skipped_at_run if item.planned else self.left_out
            counts[reason] = counts.get(reason, 0) + 1
            return reason
        if extra:  # a spare of a family not on the page yet: its plot comes off the time
            self.deadline -= extra
            self.cases.add(item.case)
        return None

    def rounds(self, nodeid: str, once: float) -> int:
        """Rounds for a benchmark whose single call took `once` seconds: its share of the time
        that the planned benchmarks after it do not need (a spare shares with the spares)."""
        item = self.find(nodeid)
        later = self.later(nodeid)
        planned_later = [i for i in later if i.planned]
        need = sum(self.cost_now(i) for i in planned_later)
        left = self.deadline - time.monotonic() - need
        peers = len(planned_later) if item is None or item.planned else len(later)
        share = left / (1 + peers)
        return int(min(MAX_ROUNDS, max(MIN_ROUNDS, share / max(once, 1e-9))))

    def finished(self, nodeid: str, fixed_seconds: float) -> None:
        item = self.find(nodeid)
        self.done.add(nodeid)
        if item is not None and item.fixed > 0:
            self.correction.setdefault((item.backend.id, item.mode), []).append(
                fixed_seconds / item.fixed)

    def summary(self) -> dict:
        return {
            "budget_s": self.seconds,
            "reserve_for_page_s": round(self.reserve, 1),
            "cpu_share": round(self.share, 2),
            "start_up_s": round(self.start_up, 1),
            "slowdown": round(self.slow, 2),
            "planned": len(self.planned),
            "planned_estimate_s": round(sum(i.cost for i in self.planned), 1),
            "spares": len(self.spare),
            "spares_ran": sum(1 for i in self.spare if i.nodeid in self.done),
            #: never collected (reason → count); pytest reports the other two as skips
            "deselected": dict(self.deselected),
            "left_out_by_plan": {**self.deselected, **self.left_out},
            #: never collected: they cannot run here (reason → count), as a skip would say
            "not_runnable": dict(self.not_runnable),
            "skipped_at_run": dict(self.skipped_at_run),
            "ran": len(self.done),
        }


def plan(items, *, seconds: float, started: float, gpu_run: bool, n_cases: int,
         probes: dict, share: float = 1.0) -> tuple[Budget, list, list]:
    """Choose and order the benchmarks: (budget, items in the order to run, deselected items).

    `items` are pytest items of test_throughput (with case, size, precision, mode, backend
    in their callspec); `started` is time.monotonic() when the budget's clock started. The
    order to run is the plan, then the spares; deselected are the benchmarks one call of which
    would take more than a twentieth of the budget."""
    from .cases import CASES

    start_up = time.monotonic() - started  # before the plan: nothing fits if it is past
    candidates = []
    for item in items:
        p = getattr(item, "callspec", None)
        if p is None or "case" not in p.params:
            continue
        params = p.params
        backend = params["backend"]
        if backend.id not in probes:
            continue
        case, size, precision, mode = (params["case"], params["size"], params["precision"],
                                       params["mode"])
        nbytes, flops = _nominal(CASES[case], size, precision)
        pr = probes[backend.id]
        call = call_seconds(case, size, precision, mode, backend, pr, nbytes, flops)
        candidates.append((rank(case, size, precision, mode, backend, gpu_run), item, case,
                           size, precision, mode, backend, nbytes, call, pr))
    candidates.sort(key=lambda c: c[0])
    slow = slowdown(share)
    # the page's reserve depends on the families planned, and what is planned on the
    # reserve: the largest plan whose families the reserve covers (fewer families, more time)
    for cases in range(n_cases + 1):
        budget, order, dropped = _choose(candidates, seconds, started,
                                         render_reserve(cases, slow), slow)
        if len({i.case for i in budget.planned}) <= cases:
            break
    budget.share = share
    budget.start_up = start_up
    budget.index()
    return budget, order, dropped


def _choose(candidates, seconds: float, started: float, reserve: float, slow: float):
    deadline = started + seconds - reserve
    budget = Budget(seconds, deadline, started, reserve, slow)
    left = deadline - time.monotonic()
    kept, spare, dropped = [], [], []
    compiled_seen: set = set()
    measured_bytes: set = set()
    roofs_seen: set = set()
    for r, item, case, size, precision, mode, backend, nbytes, call, pr in candidates:
        fixed = build_seconds(nbytes, pr)
        fixed += compile_seconds(backend, mode, first=backend.id not in compiled_seen)
        if (backend.id, precision) not in roofs_seen:
            fixed += 4.0 + bandwidth_seconds(2**28 if not backend.is_gpu else 2**30, pr)
        if (backend.id, precision, nbytes) not in measured_bytes:
            fixed += bandwidth_seconds(nbytes, pr)
        fixed *= slow
        entry = Item(item.nodeid, case, size, precision, mode, backend, r, fixed, call)
        if call * 5 > 0.25 * seconds:
            budget.deselected[TOO_LONG] = budget.deselected.get(TOO_LONG, 0) + 1
            dropped.append(item)
            continue
        if entry.cost > left:
            entry.planned = False
            budget.spare.append(entry)
            spare.append(item)
            continue
        left -= entry.cost
        if mode == "compiled":
            compiled_seen.add(backend.id)
        roofs_seen.add((backend.id, precision))
        measured_bytes.add((backend.id, precision, nbytes))
        budget.planned.append(entry)
        kept.append(item)
    return budget, kept + spare, dropped


def _nominal(case, size: int, precision: str) -> tuple[float, float]:
    """Bytes and FLOPs of a case's workload without building it (its shapes' arithmetic)."""
    from .cases import itemsize

    s = itemsize(precision)
    name = case.name
    if name.startswith("scaled_dot_product_attention"):
        t = min(2048, size // 64)
        bh = size // (t * 64)
        return 4 * size * s, 4.0 * bh * t * t * 64
    if name == "multi_head_attention":
        d, t = 512, min(1024, size // 512)
        b = size // (t * d)
        return (2 * size + 4 * d * d) * s, 8.0 * b * t * d * d + 4.0 * b * t * t * d
    if name == "dense":
        return (2 * size + 1024 * 1024) * s, 2.0 * size * 1024
    if name == "mlp_forward":
        rows = max(1, size // 1024)
        return (2 * size + 8 * 2**20 + 8 * rows * 1024) * s, 4.0 * rows * 1024 * 4096
    if name == "transformer_block":
        d, t = 512, min(512, size // 512)
        b = max(1, size // (t * d))
        return (2 * size + 12 * d * d) * s, 24.0 * b * t * d * d + 2.0 * b * t * t * d
    if name == "adam_step":
        return 7 * size * s, 12.0 * size
    return 2 * size * s, 10.0 * size

