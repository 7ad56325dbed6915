"""Dask arrays (lazy, chunked; runs past one machine with dask.distributed).

Inputs are split into chunks (at most half of each axis) so the conformance suite exercises
reductions that cross chunk boundaries, which is where chunked code goes wrong.

Where the graphs run is chosen by `SPEC_DASK_SCHEDULER`:

- unset or empty: dask's default local threaded scheduler, in this process;
- `local` or `local:N`: a `dask.distributed.LocalCluster` of N worker processes (default: one
  per CPU core) with one thread each, and a `Client` to it, started with the backend;
- a scheduler address (`tcp://10.0.0.5:8786`): a `Client` connected to that running cluster.

The client becomes dask's default scheduler for the session, so every `.compute()` (those
inside the equations' value checks included) runs on the cluster; it is closed (and a local
cluster shut down) at exit. A scheduler that cannot be reached is a `BackendUnavailable` that
names the address, never a silent fall-back to the threaded scheduler. `dask.distributed` is
imported only when a scheduler is asked for.
"""

from __future__ import annotations

import atexit
import os

import numpy as np

from ._base import Backend, BackendUnavailable, require_module

SCHEDULER_ENV = "SPEC_DASK_SCHEDULER"
#: how long to wait for a remote scheduler before giving up (dask's own default is 30 s)
CONNECT_TIMEOUT = "10s"


def start_local_cluster(n_workers: int | None = None, **options):
    """A `LocalCluster` of `n_workers` processes with one thread each, and a `Client` to it.

    `options` go to `LocalCluster` (`memory_limit`, …). The scheduler's HTTP server (the
    dashboard, where bokeh is installed) listens on a free port of 127.0.0.1 only, so clusters
    never collide on :8787. Returns `(client, cluster)`.
    """
    distributed = _distributed()
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": "127.0.0.1:0",
               **options}
    cluster = distributed.LocalCluster(n_workers=n_workers or os.cpu_count() or 1, **options)
    return distributed.Client(cluster), cluster


def connect(address: str, timeout: str | None = None):
    """A `Client` connected to the running scheduler at `address`, or a clear BackendUnavailable.

    `timeout`: how long to keep trying (default `CONNECT_TIMEOUT`).
    """
    distributed = _distributed()
    try:
        return distributed.Client(address, timeout=timeout or CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise BackendUnavailable(
            f"backend 'dask' cannot reach the dask scheduler at {address!r} set in "
            f"{SCHEDULER_ENV} ({type(exc).__name__}: {exc}). Start one there (`dask scheduler` "
            f"on that host, `dask worker {address}` on each worker machine), fix the address, "
            f"set {SCHEDULER_ENV}=local[:N] for a cluster on this machine, or unset it for "
            "dask's threaded scheduler."
        ) from exc


def _distributed():
    return require_module("distributed", backend_id="dask", extra="dask", pip_name="distributed")


def _local_workers(value: str) -> int | None:
    """N from `local:N` (None for plain `local`); BackendUnavailable if N is not a count."""
    count = value.partition(":")[2]
    if not count:
        return None
    if not count.isdigit() or int(count) < 1:
        raise BackendUnavailable(
            f"{SCHEDULER_ENV}={value!r}: write local:N with N ≥ 1 workers, plain `local` (one "
            "worker per core), a scheduler address such as tcp://host:8786, or nothing"
        )
    return int(count)


class DaskBackend(Backend):
    id = "dask"
    library = "dask"
    float_dtypes = ("float16", "float32", "float64")
    #: a tenth of the examples (two of the ci profile's 20: Hypothesis's first, all-zero draw
    #: and one more): each costs about ten times NumPy's (a graph is built, tokenised and
    #: computed for every call, and each value check computes it), while the arithmetic is
    #: NumPy's, chunk by chunk, which the properties check at full strength on NumPy. What Dask
    #: adds (lazy graphs, chunk boundaries, values unknown until computed) every example
    #: exercises; tiers X and R check its results on every record's fixed inputs against
    #: NumPy's and mpmath's, and the rotating thorough shard draws the full thorough profile
    hypothesis_share = 0.1

    def __init__(self, scheduler: str | None = None) -> None:
        """`scheduler`: a `SPEC_DASK_SCHEDULER` value; None reads the environment variable."""
        super().__init__()
        if scheduler is None:
            scheduler = os.environ.get(SCHEDULER_ENV, "")
        self.scheduler = scheduler.strip()
        self.client = self.cluster = None
        if self.scheduler == "local" or self.scheduler.startswith("local:"):
            self.client, self.cluster = start_local_cluster(_local_workers(self.scheduler))
        elif self.scheduler:
            self.client = connect(self.scheduler)
        if self.client is not None:
            atexit.register(self.close)

    def _namespace(self):
        self.da = require_module("dask.array", backend_id=self.id, extra="dask", pip_name="dask")
        import array_api_compat.dask.array as xp

        return xp

    def _device(self):
        return "cpu"

    def dtype(self, name: str):
        """As the base, but float16, which array-api-compat's dask namespace does not name,
        is NumPy's (dask arrays hold NumPy chunks)."""
        if name == "float16" and name in self.float_dtypes:
            return np.dtype(np.float16)
        return super().dtype(name)

    def asarray(self, host, dtype: str | None = None):
        host = np.asarray(host)
        self.dtype(dtype or host.dtype.name)  # BackendUnavailable for a dtype dask lacks
        host = np.array(host, dtype=dtype or None, copy=True)
        chunks = tuple(max(1, (n + 1) // 2) for n in host.shape)
        return self.da.from_array(host, chunks=chunks or ())

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x.compute() if hasattr(x, "compute") else x)

    def synchronize(self, result=None) -> None:
        """Compute `result`: a dask array is a lazy graph, so this is where its work happens."""
        if result is not None:
            import dask

            dask.compute(result)

    def versions(self) -> dict[str, str]:
        out = super().versions()
        if self.client is not None:
            from ._base import _distribution_version

            out["distributed"] = _distribution_version("distributed") or "?"
        return out

    def device_name(self) -> str:
        """`cpu` (threaded scheduler) or `distributed: ADDRESS (N workers, T threads)`."""
        if self.client is None:
            return "cpu"
        if self.client.status != "running":
            return f"distributed: {self.scheduler} (closed)"
        threads = self.client.nthreads()
        kind = "LocalCluster " if self.cluster is not None else ""
        return (f"distributed: {kind}{self.client.scheduler.address} ({len(threads)} workers, "
                f"{sum(threads.values())} threads)")

    def close(self) -> None:
        """Close the client and shut down the local cluster, if any (idempotent)."""
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
