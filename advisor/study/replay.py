"""The study's rule for replay (general data mixed into training to forget less): its
fraction is said exactly once, in `data.replay.fraction` or searched as
`search.replay_fraction`, and a searched fraction needs data to replay.

Apart from the other cross-section rules (`spec.cross_field_problems`, which calls it) because
it reads the data section and the search space together, for methods that train only.
"""

from __future__ import annotations

from typing import Any


def replay_problems(spec: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """The replay fraction is said exactly once: in data.replay or in search.replay_fraction."""
    replay, searched = spec.data.replay, spec.search.replay_fraction
    if replay is None:
        if searched is None:
            return []
        return [
            (
                ("search", "replay_fraction"),
                "search.replay_fraction needs general data to replay, but data.replay is not set",
                "add data.replay: {path: data/general_replay.jsonl}, or remove "
                "search.replay_fraction",
            )
        ]
    if replay.fraction is None and searched is None:
        return [
            (
                ("data", "replay", "fraction"),
                "data.replay has no fraction: how much of the training mixture is replay?",
                "set data.replay.fraction (e.g. 0.05), or search it: search.replay_fraction: "
                "[0.0, 0.05, 0.1]",
            )
        ]
    if replay.fraction is not None and searched is not None:
        return [
            (
                ("data", "replay", "fraction"),
                "the replay fraction is set twice: data.replay.fraction and search.replay_fraction",
                "keep search.replay_fraction and remove data.replay.fraction, or the other way",
            )
        ]
    return []


__all__ = ["replay_problems"]
