"""Looking back at recorded studies: reports, decisions, comparisons, plots and reruns.

- `report`: the report as data (`Report`, its rows and picks)
- `build`: a recorded study read into a report; `report_study`/`report_studies`, the command
- `decision`: the one sentence a person can act on
- `compare`: several studies side by side; `plots`: PNG plots, logged to the study's run
- `rerun`: a study rebuilt from its logs, run again, the drift reported

Optuna's analysis functions (importances, plots) are used here; its storage only through
`advisor.stores`.
"""
