"""The stores: the only code that calls Optuna's or MLflow's APIs.

A study lives in an Optuna storage (trials, parameters, objective values) and an MLflow tracking
store (a parent run per study, a child run per trial, artifacts). This package owns both:

- `locations`: where the stores are (embedded SQLite under `mlruns/` or servers); no store opened
- `keys`: every key advisor writes into them, named once
- `storage`: the Optuna storage, studies created, opened, listed; `sampling`: samplers, pruners
- `coordination`: many workers on one study (ask lock, heartbeats, retries, the budget count)
- `tracker`: the MLflow runs of a study; `system_metrics`: CPU/RAM/GPU samples on trial runs
- `records`: a recorded study found again, its trials read; `registry`: the model registry
- `ui`: the MLflow UI as a managed child process

Importing this package imports nothing else: `locations`, `keys` and `ui` stay light, the other
modules import Optuna or MLflow, so the commands that need neither never load them.
"""
