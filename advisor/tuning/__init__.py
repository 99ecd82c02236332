"""Running a study: the trials, their processes, the loop that shares a study among workers.

- `entry`: `tune` (the coordinator), `work` (a worker), `prepare` (also used by the service),
  and the multi-task variants
- `plan`: what a study file resolves to once (`StudyPlan`)
- `session`: one process's loop over a study: baseline, ask, run, tell, close
- `objective`: one trial, from its sampled parameters to its MLflow run and objective values
- `process` and `forkserver`: a trial's own process and its line protocol
- `stopping`: Ctrl-C and SIGTERM as a stop at a safe point
- `summary`: the rows and summary a run shows and returns

This package imports Optuna and MLflow (through `advisor.stores`): import its modules where a
study runs, never on the light path of `advisor --help`, recommend or estimate.
"""
