"""One switch moves the zoo, the searches and the ensembles to Dask, with identical results."""

from __future__ import annotations

import distributed
import joblib
import numpy as np
import pandas as pd
import pytest

import ecpif
from ecpif.align import align_runs
from ecpif.backend import BACKENDS, check_backend, parallel_backend
from ecpif.errors import ConfigError
from ecpif.pipeline import DEFAULT_FEATURES, StudyConfig, run
from ecpif.tune import TuningBudget, evaluate_tuned
from ecpif.validate import LEADERBOARD_COLUMNS

FAST = ["ridge", "knn", "extra_trees"]
TIMES = ["fit time [s]", "predict time [s]"]  # measurements, not results


def zoo(table: pd.DataFrame, n_jobs: int):
    return evaluate_tuned(table, list(DEFAULT_FEATURES), ["a", "c", "li_occupancy"], models=FAST,
                          tune=["knn"], budget=TuningBudget(n_trials=4), scheme="loro",
                          n_jobs=n_jobs, random_state=3)  # fmt: skip


@pytest.mark.slow
def test_dask_cluster_on_loopback_gives_the_local_leaderboard() -> None:
    table = align_runs(ecpif.datasets.load_nca_demo())
    local = zoo(table, n_jobs=2)
    cfg = StudyConfig(models=("ridge", "knn"), schemes=("loro",), targets=("a", "c"),
                      explore=False, seed=1)  # fmt: skip
    local_study = run(cfg)
    with parallel_backend("dask", n_workers=2) as info:
        assert info.started_cluster and info.n_workers == 2
        assert info.address.startswith("tcp://127.0.0.1:")
        client = distributed.get_client()
        assert len(client.scheduler_info()["workers"]) == 2
        assert joblib.parallel.get_active_backend()[0].__class__.__name__ == (
            "DaskDistributedBackend"
        )
        remote = zoo(table, n_jobs=info.n_jobs)
        # The pipeline's switch, connecting to the running scheduler by address.
        remote_study = run(cfg.replace(backend="dask", backend_address=info.address))
    cols = [c for c in LEADERBOARD_COLUMNS if c not in TIMES]
    pd.testing.assert_frame_equal(local.leaderboard[cols], remote.leaderboard[cols])
    assert {"knn_tuned", "voting", "stacking", "auto"} <= set(remote.leaderboard["model"])
    for t in local.targets:
        pd.testing.assert_frame_equal(local.predictions[t], remote.predictions[t])
        np.testing.assert_array_equal(local.inner[t], remote.inner[t])
    pd.testing.assert_frame_equal(local.ensemble_details, remote.ensemble_details)
    pd.testing.assert_frame_equal(
        local.tuning.drop(columns="search time [s]"), remote.tuning.drop(columns="search time [s]")
    )
    pd.testing.assert_frame_equal(local_study.leaderboard[cols], remote_study.leaderboard[cols])
    assert "backend start" in remote_study.timings
    # Everything started here is gone: the client is closed, the scheduler no longer answers.
    assert client.status == "closed"
    assert joblib.parallel.get_active_backend()[0].__class__.__name__ != "DaskDistributedBackend"
    with (
        pytest.raises(ConfigError, match="No Dask scheduler answered"),
        parallel_backend("dask", info.address, timeout_s=1.0),
    ):
        pass


def test_local_backend_changes_nothing() -> None:
    before = joblib.parallel.get_active_backend()[0].__class__
    with parallel_backend("local", n_workers=3) as info:
        assert (info.name, info.address, info.n_jobs) == ("local", None, 3)
        assert joblib.parallel.get_active_backend()[0].__class__ is before


@pytest.mark.parametrize(
    ("backend", "address", "message"),
    [
        ("ray", None, "Ray is not supported yet"),
        ("dusk", None, "Did you mean 'dask'"),
        ("local", "tcp://127.0.0.1:8786", "runs on this machine only"),
        ("dask", "tcp:// 127.0.0.1", "must look like 'tcp://host:8786'"),
    ],
)
def test_bad_backends_are_refused(backend, address, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_backend(backend, address)
    with pytest.raises(ConfigError, match=message):
        StudyConfig(backend=backend, backend_address=address)
    assert "dask" in BACKENDS


def test_worker_count_must_be_positive() -> None:
    with (
        pytest.raises(ConfigError, match="n_workers must be a positive integer"),
        parallel_backend("dask", n_workers=0),
    ):
        pass
