"""Destructive options and writes on failure: `export --force`, `rerun`, `report --plots`,
`scan --report`, `try` (the machinery and what each row must hold: `bad_input.py`).

`--force` replaces only a directory `advisor export` wrote (its `.advisor-export` marker), never
the working folder, a folder above it, one holding stores, study files or a git repository, nor
anything in `.git`; a command that fails writes nothing, not even the empty store a lookup would
create. The rows marked STORES run in a project holding a tuned study: the session's
`recorded_study` (trial 0 complete with an adapter, 1 and 2 pruned, 3 failed), its `mlruns/`
copied in. Its MLflow experiment keeps its artifacts where the study was tuned, so each of
those rows also asserts that the recorded study's own folder is unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, snapshot, write
from typer.testing import CliRunner

from advisor.cli import app


def git_repo(project: Path) -> None:
    write("repo/.git/HEAD", "ref: refs/heads/main\n")(project)
    write("repo/README.md", "a repository\n")(project)


def link_to_export(project: Path) -> None:
    write("real/.advisor-export", "{}\n")(project)
    (project / "link").symlink_to(project / "real")


def empty_tracking_store(project: Path) -> None:
    """An MLflow store that holds no study (another project's, say)."""
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{project / 'other.db'}").search_experiments()


FORCE = ("--force",)

STORE_CASES = [
    # --- export --force: what it may replace --------------------------------------------------
    bad(
        "OUT_DIR",
        "is the working folder",
        args=("export", "recorded", ".", *FORCE),
        id="export-force-working-folder",
    ),
    bad(
        "OUT_DIR",
        "holds the working folder",
        args=("export", "recorded", "..", *FORCE),
        id="export-force-ancestor-of-working-folder",
    ),
    bad(
        "OUT_DIR",
        "is the working folder",
        args=("export", "recorded", "."),
        id="export-working-folder-without-force",
    ),
    bad(
        "--force will not replace",
        "holds a database (mlflow.db)",
        args=("export", "recorded", "mlruns", *FORCE),
        id="export-force-onto-the-stores",
    ),
    bad(
        "--force will not replace",
        "holds studies' stores (mlruns/)",
        args=("export", "recorded", "old", *FORCE),
        prepare=write("old/mlruns/optuna.db", "not a store, but named like one"),
        id="export-force-folder-holding-stores",
    ),
    bad(
        "--force will not replace",
        "holds a study file (s.yaml)",
        args=("export", "recorded", "old", *FORCE),
        prepare=write("old/s.yaml", "name: s\n"),
        id="export-force-folder-holding-a-study-file",
    ),
    bad(
        "--force will not replace",
        "holds a study file (notes/s.yml)",
        args=("export", "recorded", "old", *FORCE),
        prepare=lambda p: (write("old/.advisor-export", "{}")(p), write("old/notes/s.yml", "")(p)),
        id="export-force-marked-folder-holding-a-study-file",
    ),
    bad(
        "OUT_DIR",
        "repo/.git is a git repository's metadata (.git)",
        args=("export", "recorded", "repo/.git", *FORCE),
        prepare=git_repo,
        id="export-force-onto-dot-git",
    ),
    bad(
        "OUT_DIR",
        "repo/.git/adapter is a git repository's metadata (.git) or inside it",
        args=("export", "recorded", "repo/.git/adapter"),
        prepare=git_repo,
        id="export-into-dot-git-without-force",
    ),
    bad(
        "--force will not replace",
        "holds a git repository (.git)",
        args=("export", "recorded", "repo", *FORCE),
        prepare=git_repo,
        id="export-force-onto-a-git-repository",
    ),
    bad(
        "--force will not replace",
        "was not written by `advisor export`",
        ".advisor-export",
        args=("export", "recorded", "notes", *FORCE),
        prepare=write("notes/todo.txt", "mine"),
        id="export-force-onto-a-folder-advisor-did-not-write",
    ),
    bad(
        "exists and is not empty",
        "was not written by `advisor export`",
        args=("export", "recorded", "notes"),
        prepare=write("notes/todo.txt", "mine"),
        id="export-onto-a-folder-advisor-did-not-write",
    ),
    bad(
        "OUT_DIR",
        "is a symbolic link",
        args=("export", "recorded", "link", *FORCE),
        prepare=link_to_export,
        id="export-force-onto-a-symlink",
    ),
    bad(
        "OUT_DIR",
        "s.yaml is not a directory",
        args=("export", "recorded", "s.yaml/adapter"),
        id="export-under-a-file",
    ),
    bad(
        "--bundle",
        "is the working folder",
        args=("export", "recorded", "--bundle", ".", *FORCE),
        id="export-bundle-force-working-folder",
    ),
    # --- export / try failing after the stores are open --------------------------------------
    bad(
        "--trial",
        "no trial 9",
        "one of [0, 1, 2, 3]",
        args=("export", "recorded", "out/new/adapter", "--trial", "9"),
        id="export-unknown-trial-into-new-folders",
    ),
    bad(
        "--trial",
        "pruned",
        args=("export", "recorded", "out/adapter", "--trial", "1", "--merge"),
        id="export-pruned-trial-merged",
    ),
    bad(
        "STUDY",
        "no tuned tasks",
        args=("export", "recorded", "--bundle", "out/bundle"),
        id="export-bundle-of-a-study-without-tasks",
    ),
    bad(
        "--tracking-uri",
        "there is no MLflow tracking store at other.db",
        args=("export", "recorded", "out", "--tracking-uri", "sqlite:///other.db"),
        id="export-missing-tracking-store",
    ),
    bad(
        "--tracking-uri",
        "does not hold study 'recorded'",
        args=("export", "recorded", "out", "--tracking-uri", "sqlite:///other.db"),
        prepare=empty_tracking_store,
        id="export-tracking-store-without-the-study",
    ),
    bad(
        "--trial",
        "no trial 9",
        args=("try", "recorded", "hello", "--trial", "9"),
        id="try-unknown-trial",
    ),
    bad(
        "--max-new-tokens",
        ">= 1",
        args=("try", "recorded", "hello", "--max-new-tokens", "0"),
        id="try-no-new-tokens",
    ),
    bad(
        "--tracking-uri",
        "there is no MLflow tracking store at other.db",
        args=("try", "recorded", "hello", "--tracking-uri", "sqlite:///other.db"),
        id="try-missing-tracking-store",
    ),
    # --- rerun -------------------------------------------------------------------------------
    bad(
        "--name",
        "'../evil' is not a study name",
        "lowercase letters",
        args=("rerun", "recorded", "--name", "../evil"),
        id="rerun-name-escapes-its-folder",
    ),
    bad(
        "--name",
        "'/tmp/evil' is not a study name",
        args=("rerun", "recorded", "--name", "/tmp/evil"),
        id="rerun-name-absolute-path",
    ),
    bad(
        "--name",
        "a study named 'recorded' already exists",
        "recorded-rerun-1",
        args=("rerun", "recorded", "--name", "recorded"),
        id="rerun-name-of-an-existing-study",
    ),
    bad(
        "STUDY",
        "no study named 'no_such_study'",
        "one of ['recorded']",
        args=("rerun", "no_such_study"),
        id="rerun-unknown-study-beside-stores",
    ),
    bad(
        "--trial",
        "no trial 9",
        args=("rerun", "recorded", "--trial", "9"),
        id="rerun-unknown-trial",
    ),
    # --- report ------------------------------------------------------------------------------
    bad(
        "--plots",
        "cannot write the plots to s.yaml: s.yaml is a file",
        args=("report", "recorded", "--plots", "s.yaml"),
        id="report-plots-onto-a-file",
    ),
    bad(
        "--plots",
        "s.yaml is a file",
        args=("report", "recorded", "--plots", "s.yaml/plots"),
        id="report-plots-under-a-file",
    ),
    bad(
        "STUDY",
        "no study named 'nosuch'",
        args=("report", "recorded", "nosuch", "--plots", "plots"),
        id="report-second-study-unknown-draws-nothing",
    ),
    bad(
        "--tracking-uri",
        "there is no MLflow tracking store at other.db",
        args=("report", "recorded", "--tracking-uri", "sqlite:///other.db"),
        id="report-missing-tracking-store",
    ),
]

CASES = [
    # --- rerun and lookups in a folder without stores -------------------------------------
    bad(
        "STUDY",
        "no study named 'no_such_study'",
        "advisor tune",
        args=("rerun", "no_such_study"),
        id="rerun-unknown-study-without-stores",
    ),
    bad(
        "STUDY",
        "no study named '0123456789abcdef0123456789abcdef'",
        args=("rerun", "0123456789abcdef0123456789abcdef"),
        id="rerun-unknown-run-id-without-stores",
    ),
    bad(
        "STUDY",
        "no study named 'nosuch'",
        args=("try", "nosuch", "hello"),
        id="try-unknown-study-without-stores",
    ),
    bad(
        "STUDY",
        "no study named 'nosuch'",
        args=("export", "nosuch", "--bundle", "b"),
        id="export-bundle-unknown-study-without-stores",
    ),
    # --- scan --report -------------------------------------------------------------------
    bad(
        "--report",
        "cannot write the report to reports: it is a folder",
        "--report reports/scan.md",
        args=("scan", "train.jsonl", "--report", "reports"),
        prepare=lambda project: (project / "reports").mkdir(),
        id="scan-report-onto-a-folder",
    ),
    bad(
        "--report",
        "cannot write the report to report.md: it is a folder",
        args=("scan", "train.jsonl", "--report", "report.md"),
        prepare=lambda project: (project / "report.md").mkdir(),
        id="scan-report-onto-a-folder-named-like-a-file",
    ),
    bad(
        "--report",
        "train.jsonl is not a folder",
        args=("scan", "train.jsonl", "--report", "train.jsonl/scan.md"),
        id="scan-report-under-a-file",
    ),
    bad(
        "--report",
        "cannot tell its format",
        ".md, .html, .json",
        args=("scan", "train.jsonl", "--report", "out/scan.txt"),
        id="scan-report-unknown-suffix",
    ),
    bad(
        "--report",
        "it is one of the data files being scanned",
        args=("scan", "rows.json", "--report", "rows.json"),
        prepare=write("rows.json", '{"prompt": "p", "response": "r"}\n'),
        id="scan-report-onto-its-own-data",
    ),
]


@pytest.mark.parametrize("case", STORE_CASES)
def test_refused_beside_a_tuned_study_writing_nothing(
    case: Bad, project: Path, tiny_model: Path, recorded_study
) -> None:
    shutil.copytree(recorded_study["root"] / "mlruns", project / "mlruns")
    before = snapshot(recorded_study["root"])
    check_refused(case, project, tiny_model)
    assert snapshot(recorded_study["root"]) == before, "wrote into the recorded study's folder"


@pytest.mark.parametrize("case", CASES)
def test_refused_without_writing_anything(case: Bad, project: Path, tiny_model: Path) -> None:
    check_refused(case, project, tiny_model)


def test_scan_report_onto_a_fifo_is_refused_before_the_scan(project: Path) -> None:
    """Not a table row: the table's snapshot would read the fifo and block."""
    import os

    os.mkfifo(project / "scan.md")
    result = CliRunner().invoke(app, ["scan", "train.jsonl", "--report", "scan.md"])
    assert result.exit_code == 2, result.output
    assert "not a regular file" in result.output and "rows scanned" not in result.output


def test_scan_report_is_written_whole_in_new_folders(project: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "train.jsonl", "--report", "out/deep/scan.html"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project / "out" / "deep").iterdir()) == ["scan.html"]
    assert (project / "out" / "deep" / "scan.html").read_text().endswith("</html>\n")


def test_the_tables_cover_the_cases_of_the_issue() -> None:
    ids = {case.id for case in STORE_CASES + CASES}
    assert len(ids) == len(STORE_CASES) + len(CASES)
    for kind in (
        "export-force-working-folder",
        "export-force-onto-dot-git",
        "export-into-dot-git-without-force",
        "rerun-unknown-study-without-stores",
        "rerun-name-escapes-its-folder",
        "scan-report-onto-a-folder",
        "report-plots-onto-a-file",
        "try-missing-tracking-store",
        "export-missing-tracking-store",
    ):
        assert kind in ids, kind
