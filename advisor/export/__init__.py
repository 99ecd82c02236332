"""Adapters out of a recorded study, to run anywhere without advisor's stores.

- `adapter`: a trial exported as a directory that peft (or, merged, transformers) loads offline,
  with a model card; a multi-task study's best adapters as one bundle
- `bundle`: write, load and use a bundle (one base model, one adapter per task)
- `trying`: `advisor try`, a prompt answered by a trial's or a task's adapter
- `card`: the trial's facts and its model card; `output`: safe writing of an output directory

`bundle`, `card` and `output` need no store; `adapter` and `trying` read the stores.
"""
