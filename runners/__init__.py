"""Trial execution: data, model loading, PEFT methods, training and evaluation.

`runners` receives a resolved `TrialConfig` and returns a `TrialResult` (plain data). It never
imports the CLI, Optuna or the study orchestration, so a trial can run in a subprocess, under
torchrun or on another machine. Heavy libraries are imported inside functions.
"""

from runners.config import (
    DataConfig,
    EvalConfig,
    MethodConfig,
    ModelRef,
    TrainConfig,
    TrialConfig,
    TrialResult,
)

__all__ = [
    "DataConfig",
    "EvalConfig",
    "MethodConfig",
    "ModelRef",
    "TrainConfig",
    "TrialConfig",
    "TrialResult",
]
