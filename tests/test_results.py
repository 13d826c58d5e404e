"""results.tsv: header on creation, atomic appends under concurrency and kills, clear errors, file untouched."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from harness import results
from harness.results import COLUMNS, HEADER, ResultsError, append_row, read_results


def row(i: int, **over) -> dict:
    base = {c: "" for c in COLUMNS}
    base.update(run_id=f"r{i}", commit="abc1234", status="discard", vel_err=0.5, seed_scores="1:0.5000",
                backend="mujoco", budget_s="300", harness="ok", description=f"try {i}\twith a tab\nand newline")
    base.update(over)
    return base


def test_created_with_header_and_fields_cleaned(tmp_path):
    path = tmp_path / "results.tsv"
    append_row(path, row(1))
    text = path.read_text()
    assert text.startswith(HEADER)
    rows = read_results(path)
    assert len(rows) == 1
    assert rows[0]["vel_err"] == "0.5000"
    assert rows[0]["description"] == "try 1 with a tab and newline"


def test_missing_file_reads_empty_and_ensure_creates_header(tmp_path):
    path = tmp_path / "results.tsv"
    assert read_results(path) == []
    results.ensure_file(path)
    assert path.read_text() == HEADER


def _writer(path, start, n):
    for i in range(start, start + n):
        append_row(path, row(i, description="x" * 2000))


def test_concurrent_writers_never_interleave(tmp_path):
    path = tmp_path / "results.tsv"
    procs = [multiprocessing.Process(target=_writer, args=(path, k * 100, 25)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    rows = read_results(path)
    assert len(rows) == 100
    assert sorted(r["run_id"] for r in rows) == sorted(f"r{k * 100 + i}" for k in range(4) for i in range(25))
    assert path.read_text().count(HEADER) == 1


def _slow_writer(path):
    while True:
        append_row(path, row(7, description="y" * 5000))


def test_killed_writer_leaves_only_whole_rows(tmp_path):
    path = tmp_path / "results.tsv"
    p = multiprocessing.Process(target=_slow_writer, args=(path,))
    p.start()
    time.sleep(0.5)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    rows = read_results(path)  # raises on any partial row
    assert len(rows) >= 1
    assert all(r["description"] == "y" * 5000 for r in rows)


@pytest.mark.parametrize("content, line", [
    ("run_id\tcommit\n", 1),                                       # unknown header
    (HEADER + "only\tthree\tfields\n", 2),                          # wrong field count
    (HEADER + "\t".join(["x"] * len(COLUMNS)) + "\n", 2),           # unknown status
    (HEADER + "\t".join(["r"] * len(COLUMNS)), 2),                  # partial last line (no newline)
])
def test_corrupt_file_clear_error_and_untouched(tmp_path, content, line):
    path = tmp_path / "results.tsv"
    path.write_text(content)
    with pytest.raises(ResultsError) as e:
        append_row(path, row(1))
    assert f"{path}:{line}:" in str(e.value)
    assert path.read_text() == content


def test_seed_scores_roundtrip():
    text = results.format_seed_scores({2: 0.25, 1: 0.2312, 3: None})
    assert text == "1:0.2312;2:0.2500;3:crash"
    assert results.parse_seed_scores(text) == {1: 0.2312, 2: 0.25, 3: None}


def test_unknown_column_or_status_refused(tmp_path):
    with pytest.raises(ResultsError):
        append_row(tmp_path / "r.tsv", {**row(1), "bogus": 1})
    with pytest.raises(ResultsError):
        append_row(tmp_path / "r.tsv", row(1, status="great"))
    assert not (tmp_path / "r.tsv").exists()


def test_an_older_file_keeps_every_row_byte_for_byte_and_gets_the_new_header(tmp_path):
    """A results.tsv from before the held_out column: read as it is, header upgraded in place, rows untouched,
    and the journal still recognises its rows."""
    from harness import journal

    path, jpath = tmp_path / "results.tsv", tmp_path / "journal.jsonl"
    old_row = {c: "" for c in results.FIRST_COLUMNS}
    old_row.update(run_id="r1", commit="abc1234", status="baseline", vel_err="0.1100", seed_scores="1:0.1100",
                   backend="mujoco", budget_s="300", harness="ok", description="")
    old_line = "\t".join(old_row[c] for c in results.FIRST_COLUMNS)
    path.write_text("\t".join(results.FIRST_COLUMNS) + "\n" + old_line + "\n")
    journal.adopt(jpath, [old_line])
    [read] = read_results(path)
    assert read["held_out"] == read["task"] == "" and read["vel_err"] == "0.1100"
    assert results.ensure_file(path) is True
    assert path.read_text() == HEADER + old_line + "\n"
    assert results.ensure_file(path) is False
    append_row(path, row(2, held_out=0.15), journal_path=jpath)
    lines = [results.row_line(r) for r in read_results(path)]
    check = journal.check_rows(jpath, lines)
    assert check.foreign == [] and check.missing == []
    assert read_results(path)[1]["held_out"] == "0.1500"
    extra = "\tx" * (len(results.COLUMNS) - len(results.FIRST_COLUMNS) + 1)
    path.write_text(HEADER + old_line + extra + "\n")    # more cells than columns: refused
    with pytest.raises(ResultsError, match="tab-separated fields"):
        read_results(path)
