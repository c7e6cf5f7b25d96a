"""MLflow (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``, default experiment ``loralab``)."""

from __future__ import annotations

import os
import time
from typing import Any

from loralab.train.trackers.base import TrackedRun, Tracker

STATUS = {"finished": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}


class MlflowTracker(Tracker):
    """An MLflow run named after the run folder, the recipe's settings as parameters (``lora.r``...).
    A resumed run reopens the same MLflow run (its id is kept in ``<run>/trackers.json``)."""

    name = "mlflow"
    package = "mlflow"
    module = "mlflow"

    def __init__(self, run: TrackedRun) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        run_id = run.state(self.name).get("run_id")
        if run_id is None:
            experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "loralab")
            experiment = self.client.get_experiment_by_name(experiment_name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
            run_id = self.client.create_run(experiment_id, run_name=run.name).info.run_id
            params = [Param(key, str(value)[:6000]) for key, value in _flat(run.config).items()]
            for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
                self.client.log_batch(run_id, params=params[start : start + 100])
        else:
            self.client.update_run(run_id, status="RUNNING")
        run.save_state(self.name, {"run_id": run_id})
        self.run_id = run_id

    def log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, value, now, step) for key, value in values.items()])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=STATUS[status])


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
