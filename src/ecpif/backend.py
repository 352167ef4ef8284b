"""Where the parallel work runs: this machine (joblib's processes) or a Dask cluster.

Every parallel step of ecpif (the zoo's ``(model, training set)`` fits, the hyperparameter
searches that run inside them, the nested fits from which the ensembles are chosen) is a
:class:`joblib.Parallel` call. :func:`parallel_backend` is a context manager that points those calls
at another joblib backend, so one switch moves the whole study without touching any step:

``"local"``
    joblib's default (loky worker processes on this machine). Nothing changes; the default.
``"dask"``
    A Dask distributed cluster through joblib's ``"dask"`` backend. With an ``address``
    (``"tcp://scheduler:8786"``) ecpif connects to a running scheduler and leaves it running;
    without one it starts a throw-away :class:`~dask.distributed.LocalCluster` on the loopback
    interface (``n_workers`` single-threaded worker processes, no dashboard) and shuts it down on
    exit.

Design decisions
----------------
* **Same numbers everywhere.** Each task builds its model from ``(name, seed)`` and fits a fixed,
  sorted set of rows on one thread, so the result cannot depend on which worker ran it or in which
  order: a Dask run gives the same leaderboard as a local one (a test checks it on a loopback
  cluster with two workers).
* **Nothing global is left behind.** The joblib configuration is only changed inside the ``with``
  block, a cluster ecpif started is closed on exit (also on errors), and a cluster given by address
  is only disconnected from.
* **Ray is not offered.** joblib has a Ray backend, but Ray starts its services on the node's
  network address; until that is tested here, ``"dask"`` is the distributed engine.

Examples
--------
>>> from ecpif.validate import evaluate_zoo
>>> with parallel_backend("local") as info:
...     info.name
'local'
>>> with parallel_backend("dask") as info:  # doctest: +SKIP
...     result = evaluate_zoo(table, features, ["a"], models=["ridge", "knn"], n_jobs=-1)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ecpif.errors import ConfigError, did_you_mean, require

#: Names accepted by :func:`parallel_backend` (and ``StudyConfig.backend``, ``--backend``).
BACKENDS: tuple[str, ...] = ("local", "dask")
#: Seconds to wait for a scheduler given by address (or for a local cluster's workers).
CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`parallel_backend` set up.

    Attributes
    ----------
    name
        ``"local"`` or ``"dask"``.
    address
        The scheduler's address (``None`` for ``"local"``).
    n_workers
        Worker threads available to joblib (cluster cores for Dask).
    started_cluster
        ``True`` when ecpif started the cluster itself (and will stop it).
    """

    name: str
    address: str | None
    n_workers: int
    started_cluster: bool = False

    @property
    def n_jobs(self) -> int:
        """The ``n_jobs`` to pass to ecpif functions inside the block (``-1`` = all workers)."""
        return self.n_workers if self.name == "local" else -1


def check_backend(backend: str, address: str | None = None) -> str:
    """Validate a backend name and address; returns the name.

    >>> check_backend("dask")
    'dask'
    """
    if backend not in BACKENDS:
        hint = (
            " Ray is not supported yet; use 'dask'."
            if backend == "ray"
            else did_you_mean(str(backend), BACKENDS)
        )
        raise ConfigError(
            f"Unknown parallel backend {backend!r}.{hint} Choose one of {list(BACKENDS)}."
        )
    if address is not None:
        if backend == "local":
            raise ConfigError(
                f"A backend address ({address!r}) was given with the 'local' backend, which runs "
                f"on this machine only; pass backend='dask' or drop the address."
            )
        if not isinstance(address, str) or not address.strip() or " " in address.strip():
            raise ConfigError(
                f"The backend address must look like 'tcp://host:8786'; got {address!r}."
            )
    return backend


@contextlib.contextmanager
def parallel_backend(
    backend: str = "local",
    address: str | None = None,
    *,
    n_workers: int = 2,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> Iterator[BackendInfo]:
    """Run every joblib-parallel step of ecpif inside the block on ``backend``.

    Parameters
    ----------
    backend
        ``"local"`` (default, no change) or ``"dask"``.
    address
        Address of a running Dask scheduler (``"tcp://10.0.0.5:8786"``). ``None`` with ``"dask"``
        starts a local cluster on 127.0.0.1 for the duration of the block.
    n_workers
        Workers of a cluster started here (one thread each); for ``"local"``, the ``n_jobs``
        reported in :attr:`BackendInfo.n_jobs`.
    timeout_s
        Seconds to wait for the scheduler (and for workers to appear).

    Yields
    ------
    BackendInfo

    Raises
    ------
    ConfigError
        Unknown backend, malformed address, or no scheduler reachable at ``address``.
    MissingDependencyError
        ``"dask"`` without ``dask[distributed]`` installed (``pip install 'ecpif[dask]'``).

    Examples
    --------
    >>> with parallel_backend("dask", n_workers=2) as info:  # doctest: +SKIP
    ...     info.address.startswith("tcp://127.0.0.1:")
    True
    """
    check_backend(backend, address)
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ConfigError(f"n_workers must be a positive integer; got {n_workers!r}.")
    if backend == "local":
        yield BackendInfo("local", None, n_workers)
        return
    require("distributed", "dask", "The 'dask' backend")
    import joblib
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        cluster: Any = None
        if address is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster, timeout=timeout_s))
        else:
            try:
                client = stack.enter_context(Client(address, timeout=timeout_s))
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"No Dask scheduler answered at {address!r} within {timeout_s:g} s "
                    f"({type(exc).__name__}); start one ('dask scheduler') or check the address."
                ) from None
        cores = int(sum(client.ncores().values())) or n_workers
        info = BackendInfo("dask", str(client.scheduler.address), cores, cluster is not None)
        stack.enter_context(
            joblib.parallel_config(backend="dask", wait_for_workers_timeout=timeout_s)
        )
        yield info


__all__ = ["BACKENDS", "BackendInfo", "check_backend", "parallel_backend"]
