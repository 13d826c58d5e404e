"""Git checks and the incumbent ref, on real throwaway repositories."""

from __future__ import annotations

import subprocess

import pytest

from conftest import commit_train, git, make_repo, run_cmd
from harness import gitops
from harness.gitops import GitError


def test_not_a_repo_is_a_clear_error(tmp_path):
    with pytest.raises(GitError, match="not a git repository"):
        gitops.check_repo(tmp_path)


def test_detached_head_is_a_clear_error(repo):
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(GitError, match="detached"):
        gitops.branch(repo)


def test_dirty_tree_rules(repo):
    assert gitops.check_tree(repo) == []
    (repo / "notes.txt").write_text("untracked files outside the harness are fine")
    assert gitops.check_tree(repo) == []
    (repo / "train.py").write_text("# uncommitted\n")
    with pytest.raises(GitError, match="commit it first"):
        gitops.check_tree(repo)
    git(repo, "checkout", "--", "train.py")
    (repo / "pyproject.toml").write_text("[project]\n")
    with pytest.raises(GitError, match="outside train.py: pyproject.toml"):
        gitops.check_tree(repo)
    git(repo, "checkout", "--", "pyproject.toml")
    (repo / "harness" / "verdict.py").write_text("KEEP_FACTOR = 0\n")
    (repo / "harness" / "extra.py").write_text("")
    assert sorted(gitops.check_tree(repo)) == ["harness/extra.py", "harness/verdict.py"]


def test_incumbent_ref_survives_reset_and_must_be_an_ancestor(repo):
    base = gitops.head(repo)
    assert gitops.incumbent(repo, "autoresearch/test") is None
    gitops.set_incumbent(repo, "autoresearch/test", base)
    commit_train(repo, "# candidate\n", "try")
    gitops.reset_hard(repo, base)
    assert gitops.incumbent(repo, "autoresearch/test") == base
    # a branch re-created elsewhere does not inherit a stale incumbent
    git(repo, "checkout", "-q", "--orphan", "other")
    git(repo, "commit", "-q", "-m", "unrelated")
    gitops.set_incumbent(repo, "other", gitops.head(repo))
    git(repo, "checkout", "-q", "autoresearch/test")
    assert gitops.incumbent(repo, "other") is None


def test_harness_differs_and_hashes(repo):
    base = gitops.head(repo)
    h0 = gitops.harness_hashes(repo)
    assert "evaluate.py" in h0 and "harness/verdict.py" in h0
    (repo / "harness" / "verdict.py").write_text("# changed\n")
    git(repo, "commit", "-q", "-am", "touch harness")
    assert gitops.harness_differs(repo, base, "HEAD")
    assert not gitops.harness_differs(repo, "HEAD", "HEAD")
    assert gitops.harness_hashes(repo) != h0


@pytest.mark.parametrize("case", ["not_repo", "detached", "dirty_other", "dirty_train"])
def test_experiment_refuses_bad_repo_states_with_a_message(tmp_path, case):
    repo = make_repo(tmp_path / "r")
    if case == "not_repo":
        subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)
    elif case == "detached":
        git(repo, "checkout", "-q", "--detach")
    elif case == "dirty_other":
        (repo / "pyproject.toml").write_text("[project]\n")
    else:
        (repo / "train.py").write_text((repo / "train.py").read_text() + "\n# edited\n")
    p = run_cmd(repo, "-m", "harness.experiment", "--smoke")
    assert p.returncode == 2, p.stdout + p.stderr
    message = {"not_repo": "not a git repository", "detached": "detached",
               "dirty_other": "outside train.py", "dirty_train": "commit it first"}[case]
    assert message in p.stdout
    assert not (repo / "runs").exists()


def _append(repo, commit, status):
    from harness import journal
    from harness.results import COLUMNS, append_row

    row = {c: "" for c in COLUMNS}
    row.update(run_id=f"r-{status}", commit=commit, status=status, backend="mujoco", budget_s="300", harness="ok")
    append_row(repo / "results.tsv", row, journal_path=journal.journal_path(repo))  # as the harness writes it


@pytest.mark.parametrize("status, code, message, moves", [
    ("keep", 0, "Nothing to undo", False),
    ("smoke", 0, "never kept, nothing to apply", False),
    ("discard", 0, "reset", True),
    ("crash", 0, "reset", True),
])
def test_apply_follows_the_last_row_of_head(repo, status, code, message, moves):
    import io

    from harness import experiment
    from harness.display import Display

    base = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", base)
    cand = commit_train(repo, "# candidate\n", "candidate")
    _append(repo, cand, "floor")      # floor rows are not verdicts
    _append(repo, cand, status)
    out = io.StringIO()
    assert experiment.apply_verdict(repo, Display(out, tty=False)) == code
    assert message in out.getvalue()
    assert gitops.head(repo) == (base if moves else gitops.resolve(repo, cand))
    assert (repo / "results.tsv").read_text().count("\n") == 3   # header + both rows, after any reset


def test_apply_without_row_or_incumbent_says_what_to_do(repo):
    import io

    from harness import experiment
    from harness.display import Display

    out = io.StringIO()
    assert experiment.apply_verdict(repo, Display(out, tty=False)) == 1
    assert "run `uv run train.py` first" in out.getvalue()
    _append(repo, gitops.short(repo, "HEAD"), "crash")
    out = io.StringIO()
    assert experiment.apply_verdict(repo, Display(out, tty=False)) == 1
    assert "no kept commit" in out.getvalue()


def test_apply_carries_the_next_idea_committed_during_the_run(repo):
    """The agent committed its next idea on top while the experiment ran: a discard moves that commit onto the
    incumbent; a keep leaves it on top; one that cannot move leaves everything as it was."""
    import io

    from harness import experiment
    from harness.display import Display

    base = gitops.head(repo)
    gitops.set_incumbent(repo, "autoresearch/test", base)
    cand = commit_train(repo, "# candidate\n", "candidate")
    _append(repo, cand, "discard")
    (repo / "notes.txt").write_text("next idea\n")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "-m", "next idea")
    out = io.StringIO()
    assert experiment.apply_verdict(repo, Display(out, tty=False)) == 0
    assert "moved the commits made on top of" in out.getvalue()
    assert git(repo, "rev-parse", "HEAD^") == base                       # the next idea, now on the incumbent
    assert git(repo, "log", "-1", "--format=%s") == "next idea"
    assert "# candidate" not in (repo / "train.py").read_text() and (repo / "notes.txt").exists()

    cand = commit_train(repo, "# kept\n", "kept one")
    gitops.set_incumbent(repo, "autoresearch/test", gitops.head(repo))
    _append(repo, cand, "keep")
    top = commit_train(repo, "# kept\n# and more\n", "on top of a keep")
    out = io.StringIO()
    assert experiment.apply_verdict(repo, Display(out, tty=False)) == 0
    assert "stays" in out.getvalue() and gitops.short(repo, "HEAD") == top

    cand = commit_train(repo, "# tried\n", "tried")
    _append(repo, cand, "discard")
    commit_train(repo, "# tried\n# and built on it\n", "needs the discarded change")   # conflicts without it
    before = gitops.head(repo)
    out = io.StringIO()
    assert experiment.apply_verdict(repo, Display(out, tty=False)) == 1
    assert "could not move" in out.getvalue() and gitops.head(repo) == before
    assert git(repo, "status", "--porcelain") == ""
