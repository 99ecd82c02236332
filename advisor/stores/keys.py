"""Every key advisor writes into its stores, named once.

A study lives in two stores: Optuna (trials, parameters, objective values, user attributes) and
MLflow (one parent run per study, one child run per trial and for the baseline, with tags,
metrics and artifacts). These names are the stores' layout: a store written by one version of
advisor is read by the next, so a name here changes only with a migration. Tests iterate them.
"""

from __future__ import annotations

# -- Optuna study user attributes ------------------------------------------------------------
METRIC = "advisor.metric"
"""The task metric's name (json_match, rouge_l, ...)."""
OBJECTIVES = "advisor.objectives"
"""Objective names as recorded: `score` (or `eval_loss`), then a cost."""
N_TRIALS = "advisor.n_trials"
"""The total trials wanted, set by `tune`, read by every worker."""
SPEC_HASH = "advisor.spec_hash"
"""The spec hash of the study file that prepared the study."""
SPEC_CONTENT = "advisor.spec_content"
"""What the spec hash fingerprints, as a mapping (paths relative to the study file): a changed
study file under the study's name is refused showing what differs, wherever the folder moved."""
SEARCH_SPACE = "advisor.search_space"
"""Each searched parameter's distribution, as Optuna's JSON."""
BASELINE_SCORE = "advisor.baseline_score"
"""The untuned base model's score, once evaluated."""
PARENT_RUN = "advisor.mlflow_parent_run_id"
"""The MLflow parent run; set last by the coordinator, so workers wait for it."""
EXPERIMENT_ID = "advisor.mlflow_experiment_id"
EXPERIMENT_NAME = "advisor.mlflow_experiment_name"
TRACKING_URI = "advisor.mlflow_tracking_uri"
"""Where the runs are (credentials redacted)."""
SERVED = "advisor.served"
"""True when `advisor serve` prepared the study (no coordinator runs it)."""
BASELINE = "advisor.baseline"
"""A served study's baseline: `pending`, `claimed:<host:pid>` while a worker runs it, `done`."""
STOP = "advisor.stop_requested"
"""Set by `POST /v1/studies/{name}/stop`: workers start no new trial."""
COORDINATOR = "advisor.coordinator"
"""`host:pid` of the `advisor tune` process coordinating the study now (cleared when it ends): a
second `tune` of the same study joins it as a worker instead of coordinating it twice."""
WORKER_SLOTS = "advisor.worker_slots"
"""How many processes joined the study as workers: each takes the next slot, and its sampler a
seed of its own (the coordinator's is the study's seed)."""
UMBRELLA = "advisor.umbrella"
"""Optuna user attribute and MLflow tag: the multi-task study a task's study belongs to."""
TASK = "advisor.task"
"""Optuna user attribute and MLflow tag: the task's name."""

# -- Optuna trial user attributes ------------------------------------------------------------
RUN_ID = "mlflow_run_id"
"""The trial's MLflow child run."""
WORKER = "advisor.worker"
"""`host:pid` of the worker process that runs the trial."""
ERROR = "error"
"""Why a failed trial failed (its first 2000 characters)."""
WARM_START = "advisor.warm_start"
"""Where a warm-start trial's parameters came from (`optuna.start`, `recommended`,
`study:<name>#<trial>`): set when `tune` enqueues it as one of a new study's first trials."""
RESULTS = (
    "score",
    "eval_loss",
    "wall_seconds",
    "peak_memory_mb",
    "peak_reserved_mb",
    "trainable_params",
    "adapter_mb",
    "cost_usd",
    "gpu_hours",
    "device",
)
"""What a finished trial's result leaves on its Optuna trial, besides its objective values."""

# -- MLflow tags -----------------------------------------------------------------------------
ROLE = "advisor.role"
"""study (the parent run), trial or baseline."""
STUDY = "advisor.study"
TRIAL = "advisor.trial"
STATE = "advisor.state"
"""A trial run's state in advisor's words: running, complete, pruned, failed."""
PARENT = "mlflow.parentRunId"
"""MLflow's own link from a child run to its parent."""
ERROR_TAG = "advisor.error"
DEVICE = "advisor.device"
PRECISION = "advisor.precision"
SEED = "advisor.seed"
OPTUNA_STORAGE = "advisor.optuna_storage"
RESUMED_AT = "advisor.resumed_at"
DATA_HASH = "advisor.data_hash."
"""Prefix: `advisor.data_hash.train`, `.eval`, `.replay`."""
VERSION = "version."
"""Prefix of a package's version, as a parameter of the parent run and a tag of a trial run."""
OPTUNA_STUDY = "optuna.study_name"
OPTUNA_TRIAL = "optuna.trial_number"
GIT_COMMIT = "mlflow.source.git.commit"
RERUN_OF = "advisor.rerun_of"
"""On a rerun's parent run: the parent run it reproduces (and `_study`, `_trial` below)."""
RERUN_OF_STUDY = "advisor.rerun_of_study"
RERUN_TRIAL = "advisor.rerun_trial"
PARAM_TAG = "advisor.param."
"""Prefix of a registered model version's tags: the trial's searched parameters."""
SCORE_TAG = "advisor.score"
"""A registered model version's tag: the trial's score."""

# -- MLflow artifacts ------------------------------------------------------------------------
STUDY_FILE = "study.yaml"
"""The resolved study file, on the parent run: what a rerun rebuilds the study from."""
PROVENANCE = "provenance.json"
"""Data hashes, seed, package versions and git commit, on the parent run."""
TRIAL_CONFIG = "trial_config.json"
TRIAL_RESULT = "trial_result.json"
ADAPTER = "adapter"
"""A trial run's peft adapter directory (LoRA-family methods)."""
DATA_SCAN = "data_scan"
"""The data scan's report files, on the parent run."""
PLOTS = "plots"
"""The report's plots, on the parent run."""

# -- MLflow metrics: where a trial's time went, and a study's outcome ----------------------
PHASE_SECONDS = {
    "load": "load_seconds",
    "index": "index_seconds",
    "train": "train_seconds",
    "eval_loss": "eval_loss_seconds",
    "generation": "eval_seconds",
    "probes": "forgetting_seconds",
    "setup_save": "other_seconds",
    "tracking": "tracking_seconds",
}
"""Phase -> the trial run's metric of its seconds. The runner times load, train, the eval-loss
passes, scoring (generation, or the eval loss alone for a loss metric) and the forgetting
probes, and a retrieval method's indexing of data.knowledge (`index_seconds`, absent for
the other methods); `other_seconds` is the rest of the runner's wall time (reading the data,
the trainer's set-up, saving the adapter); `tracking_seconds` is what recording the run in
MLflow added in the parent (opening it, and the metrics, tags and artifacts at the end). A run
of a version before these were logged lacks eval_loss, setup_save and tracking."""
WALL_SECONDS = "wall_seconds"
"""The runner's wall time of a trial (tracking not included)."""
EXPERIMENT_KIND = "mlflow.experimentKind"
"""MLflow's experiment tag the UI reads to open an experiment on its runs table
(`custom_model_development`) instead of the GenAI overview (traces)."""
TRAINING_KIND = "custom_model_development"
BEST_SCORE = "best_score"
"""Parent-run metrics, updated as trials finish: the study's outcome in the runs table."""
BEST_GAIN = "best_gain_over_baseline"
BEST_TRIAL = "best_trial"
TRIALS_DONE = "trials_done"
TOTAL_COST = "total_cost_usd"
BEST_PARAM = "best."
"""Prefix of the parent run's tags naming the best trial's parameters (`best.r`)."""
