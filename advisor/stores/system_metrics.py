"""MLflow's system metrics on a trial's run: CPU, RAM and, with nvidia-ml-py, GPU use.

MLflow's own `SystemMetricsMonitor`, started here for the trial's run instead of through
`mlflow.start_run(log_system_metrics=True)` (the tracker uses no fluent runs): a thread that
every `interval_s` seconds logs `system/cpu_utilization_percentage`,
`system/system_memory_usage_megabytes`, disk and network figures and, when nvidia-ml-py is
installed, `system/gpu_N_utilization_percentage` and `system/gpu_N_memory_usage_*`. It samples
the whole machine from the worker process: the trial process is its child.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor


@contextlib.contextmanager
def system_metrics(run_id: str, *, tracking_uri: str, interval_s: float) -> Iterator[None]:
    """Sample the machine into `run_id` while the block runs (a trial process trains).

    Stopped (and flushed) when the block ends, also on an exception or Ctrl-C; a monitor that
    cannot start is skipped, never failing the trial. `interval_s` 0: no sampling.
    """
    monitor = _monitor(run_id, tracking_uri, interval_s) if interval_s > 0 else None
    if monitor is None:
        yield
        return
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


def _monitor(run_id: str, tracking_uri: str, interval_s: float) -> Any | None:
    # A GPU that cannot report its power draw makes MLflow warn at every sample; the
    # metrics it can read are still logged, so keep its warnings off the terminal.
    logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)
    try:
        monitor = SystemMetricsMonitor(
            run_id, sampling_interval=interval_s, tracking_uri=tracking_uri
        )
    except Exception:  # psutil missing, an unreadable /proc: the trial runs unmonitored
        logging.getLogger(__name__).debug("no system metrics for %s", run_id, exc_info=True)
        return None
    only_visible_gpus(monitor)
    return monitor


def only_visible_gpus(monitor: Any) -> None:
    """Keep the GPUs of CUDA_VISIBLE_DEVICES in MLflow's GPU monitor, in that order.

    MLflow has no option for it, so this one function reaches into the monitor's parts (their
    `gpu_handles`). NVML lists every GPU of the machine; a worker started with `--gpus 1` trains
    on GPU 1 only, so its trials' runs should show that one, as `gpu_0` (the trial's `cuda:0`).
    A list of UUIDs or MIG ids cannot be mapped to NVML indices here: then every GPU is kept.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return
    try:
        indices = [int(part) for part in visible.split(",") if part.strip()]
    except ValueError:
        return
    for part in monitor.monitors:
        handles = getattr(part, "gpu_handles", None)
        if handles is not None:
            part.gpu_handles = [handles[i] for i in indices if 0 <= i < len(handles)]
