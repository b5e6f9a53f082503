"""``explain-batch --engine ray`` refuses bad input before it starts a cluster: one line
naming the file and what is wrong, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from expound.clients.cli import main


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("rows.csv", "applicant,age\n1,30\n1,40\n", "1 id(s) repeated in 'applicant': '1'"),
        ("rows.csv", "applicant,age\n,30\n", "column 'applicant' has empty ids"),
        ("rows.csv", "id,age\n1,30\n", "no id column 'applicant' (columns: id, age)"),
        ("rows.json", "{}", r"expected a .csv or .parquet file"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    expected: str,
) -> None:
    source = tmp_path / name
    source.write_text(content)
    argv = ["explain-batch", str(source), "--engine", "ray", "--model", "m"]
    code = main([*argv, "--out", str(tmp_path / "out"), "--id-column", "applicant"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {source}: ") and expected in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists(), "nothing claimed before the input is checked"


def test_parquet_ids_are_checked_like_csv_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "rows.parquet"
    pd.DataFrame({"applicant": ["a", "b", "a"], "age": [1, 2, 3]}).to_parquet(source)
    argv = ["explain-batch", str(source), "--engine", "ray", "--model", "m"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--id-column", "applicant"]) == 2
    assert "1 id(s) repeated in 'applicant': 'a'" in capsys.readouterr().err
