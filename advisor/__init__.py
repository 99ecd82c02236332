"""advisor: decide how to adapt an LLM, then tune and track it with evidence.

`import advisor` stays light on purpose: torch, transformers and peft are imported only inside the
functions that train, so `advisor --help`, `recommend` and `estimate` start instantly.
"""

__version__ = "0.1.0"
