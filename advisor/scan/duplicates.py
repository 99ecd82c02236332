"""Exact and near duplicates, with MinHash LSH (datasketch), listed as clusters of rows.

A duplicated example weighs double in training, and an eval example that also sits in the train
file makes the metric measure memory. Two rows are compared as whole examples (prompt + response):

- exact: the same text once runs of whitespace are collapsed and the ends trimmed;
- near: Jaccard similarity of their sets of 5-character shingles (lower-cased) at least the
  threshold (default 0.8). Character shingles, not word shingles, because instructions are short
  and some languages do not separate words. MinHash LSH proposes candidate pairs in about linear
  time (searching 0.1 below the threshold, so that pairs just above it are rarely missed); each
  candidate is then confirmed with the exact Jaccard similarity of its shingle sets, so a listed
  pair really is that similar.

Clusters are connected components: A~B and B~C puts A, B and C in one cluster. `redundant_rows`
counts what deduplication would remove (each cluster's size minus one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from advisor.scan.core import Location, Row, ScanContext
from advisor.scan.pii import preview

SHINGLE_CHARS = 5
NUM_PERM = 128
LSH_MARGIN = 0.1


@dataclass
class Cluster:
    kind: str
    """exact (identical text) or near (similar text; may include exact copies)."""
    rows: list[Location]
    similarity: float
    """The lowest confirmed pairwise similarity linking the cluster (1.0 for exact)."""
    preview: str
    """The first row's text, one line, personal data masked."""


@dataclass
class DuplicateResult:
    threshold: float
    exact: list[Cluster] = field(default_factory=list)
    near: list[Cluster] = field(default_factory=list)
    exact_redundant: int = 0
    redundant_rows: int = 0
    """Rows deduplication would remove: exact and near together."""
    cross_file_clusters: int = 0
    """Clusters with rows in more than one file (e.g. eval examples that are also in train)."""

    def measures(self) -> dict[str, int]:
        return {
            "duplicates": self.redundant_rows,
            "exact_duplicates": self.exact_redundant,
            "near_duplicates": self.redundant_rows - self.exact_redundant,
        }


def normalise(text: str) -> str:
    return " ".join(text.split())


def shingles(text: str, size: int = SHINGLE_CHARS) -> set[str]:
    text = normalise(text).lower()
    if len(text) <= size:
        return {text}
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def lsh_threshold(threshold: float) -> float:
    """Where LSH looks: a little below the threshold, for recall (candidates are confirmed).

    Capped at 0.9: above it datasketch cannot split 128 permutations into two or more bands.
    """
    return min(max(threshold - LSH_MARGIN, 0.05), 0.9)


def similar_pairs(docs: Sequence[set[str]], threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, Jaccard) for every pair LSH proposes and the exact similarity confirms."""
    from datasketch.lsh import MinHashLSH
    from datasketch.minhash import MinHash

    hashes = MinHash.bulk([[s.encode("utf-8") for s in doc] for doc in docs], num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=lsh_threshold(threshold), num_perm=NUM_PERM)
    pairs = []
    for index, minhash in enumerate(hashes):
        for other in lsh.query(minhash):
            similarity = jaccard(docs[index], docs[other])
            if similarity >= threshold:
                pairs.append((other, index, similarity))
        lsh.insert(index, minhash, check_duplication=False)
    return pairs


def _exact_groups(rows: Sequence[Row]) -> list[list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        key = normalise(row.joined())
        if key:  # rows with nothing in them are the `empty` check's business
            groups.setdefault(key, []).append(row)
    return list(groups.values())


def _files(rows: Sequence[Row]) -> int:
    return len({row.file for row in rows})


def check(rows: Sequence[Row], context: ScanContext) -> DuplicateResult:
    threshold = context.options.near_threshold
    rank = {row: index for index, row in enumerate(rows)}
    groups = _exact_groups(rows)
    result = DuplicateResult(threshold=threshold)
    for group in groups:
        if len(group) > 1:
            result.exact.append(_cluster("exact", group, 1.0, rank))
            result.exact_redundant += len(group) - 1
    docs = [shingles(group[0].joined()) for group in groups]
    links = _UnionFind(len(groups))
    weakest: dict[int, float] = {}
    pairs = similar_pairs(docs, threshold) if len(groups) > 1 else []
    for a, b, _ in pairs:
        links.union(a, b)
    for a, _b, similarity in pairs:
        root = links.find(a)
        weakest[root] = min(weakest.get(root, 1.0), similarity)
    components: dict[int, list[int]] = {}
    for index in range(len(groups)):
        components.setdefault(links.find(index), []).append(index)
    for root, members in components.items():
        members_rows = [row for index in members for row in groups[index]]
        result.redundant_rows += len(members_rows) - 1
        if len(members) > 1:
            result.near.append(_cluster("near", members_rows, round(weakest[root], 3), rank))
        if len(members_rows) > 1 and _files(members_rows) > 1:
            result.cross_file_clusters += 1
    for clusters in (result.exact, result.near):
        clusters.sort(key=lambda c: -len(c.rows))  # stable: equal sizes stay in scan order
    return result


def _cluster(kind: str, rows: Sequence[Row], similarity: float, rank: dict[Row, int]) -> Cluster:
    ordered = sorted(rows, key=rank.__getitem__)  # scan order: train rows before eval rows
    return Cluster(
        kind=kind,
        rows=[Location(row.file, row.row) for row in ordered],
        similarity=similarity,
        preview=preview(ordered[0].joined()),
    )
