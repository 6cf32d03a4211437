"""``cbcp-sim analyze`` reads large files in bounded memory (issue 19, point 6).

Spec: "An adversarial test found that a 500 MB CSV takes 8.9 GB of memory and 6.5 minutes. Make reading bounded:
read only the needed columns (the mapped roles plus chosen covariates, and ``trial`` if present), streaming the file
in chunks, so memory is proportional to the kept columns, not the file; a stated limit on rows analysed
(``MAX_ROWS``), refused with a one-line error naming the file, the row count and the limit once it is exceeded while
streaming (do not read the rest); rows of other trials filtered out by ``--trial`` do not count toward it."

References: the unchunked read (one chunk) and a DataFrame of the same data, whose results must be equal bit for
bit; tracemalloc for the memory taken while reading.
"""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from cbcp_sim.analysis import long_data
from cbcp_sim.analysis.long_data import read_long
from cbcp_sim.analysis.real_data import analyze
from cbcp_sim.errors import SettingsError

from .support import assert_one_line_error, cli
from .test_analyze import synthetic
from .test_cli_analyze import BAD_FILES, GOOD

#: GOOD's twelve rows: six children seen at 6 and 12 months.
ROWS = 12


# --- the row limit -------------------------------------------------------------------------------------------------


def test_a_file_over_the_limit_is_one_line_naming_file_and_limit(capsys, tmp_path, monkeypatch):
    """With MAX_ROWS 10, GOOD's 12 rows are refused in one line naming the file, the limit and the line of the first
    row past it; reading stops there: the ragged line further on, an error under a higher limit, is never reached.
    12 rows pass a limit of 12."""
    monkeypatch.setattr(long_data, "MAX_ROWS", 10)
    monkeypatch.setattr(long_data, "CHUNK_ROWS", 4)
    path = tmp_path / "big.csv"
    path.write_text(GOOD + "g,0,6,50\n" * 20)  # ragged rows from line 14 on
    code, out, err = cli(capsys, "analyze", str(path), "--method", "ancova")
    assert_one_line_error(code, out, err, "error: data: ", str(path), "more than 10 rows", "the limit",
                          "line 12")
    with pytest.raises(SettingsError) as info:
        analyze(path, method="ancova")
    assert info.value.path == "data" and f"{path} has more than 10 rows" in info.value.message
    monkeypatch.setattr(long_data, "MAX_ROWS", 100)
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ancova"), "line 14", "4 fields")
    path.write_text(GOOD)
    monkeypatch.setattr(long_data, "MAX_ROWS", ROWS)
    assert analyze(path, method="ancova").n_subjects == 6


def test_a_dataframe_over_the_limit_is_refused_too(monkeypatch):
    """A DataFrame's rows count as a file's: over the limit, data names the index of the first row past it."""
    monkeypatch.setattr(long_data, "MAX_ROWS", 5)
    monkeypatch.setattr(long_data, "CHUNK_ROWS", 2)
    frame = synthetic(n=4)
    assert len(frame) > 5
    with pytest.raises(SettingsError) as info:
        analyze(frame, method="welch")
    assert info.value.path == "data"
    assert info.value.message.startswith("the DataFrame has more than 5 rows, the limit (the first row past it is "
                                         "index 5)")


def test_rows_of_other_trials_do_not_count(capsys, tmp_path, monkeypatch):
    """Three trials of 12 rows each with MAX_ROWS 12: --trial reads one (the others are dropped as they are read)
    and gives that trial's result; without --trial every row counts and the file is refused, naming the trials of
    the rows read."""
    frame = pd.read_csv(io.StringIO(GOOD))
    trials = [frame.assign(trial=k, value=frame["value"] + k * frame["arm"]) for k in range(3)]
    path = tmp_path / "trials.csv"
    pd.concat(trials).to_csv(path, index=False)
    alone = tmp_path / "one.csv"
    trials[2].drop(columns="trial").to_csv(alone, index=False)
    want = analyze(alone, method="ancova").to_json()
    monkeypatch.setattr(long_data, "MAX_ROWS", ROWS)
    monkeypatch.setattr(long_data, "CHUNK_ROWS", 5)
    assert analyze(path, method="ancova", trial=2).to_json() == want
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ancova"), "more than 12 rows",
                          "the rows read hold 2 trials (column trial: 0, 1): choose one")
    monkeypatch.setattr(long_data, "MAX_ROWS", ROWS - 1)
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ancova", "--trial", "2"),
                          "error: data: ", "more than 11 rows of trial 2", "line 37")


# --- columns not used are not kept ---------------------------------------------------------------------------------


def _wide_file(path, children: int, width: int) -> int:
    """GOOD-like rows of ``children`` children at 6 and 12 months with a text column of ``width`` characters and a
    garbage column (text, quotes, commas, blanks) between the used ones; the file's size in bytes."""
    rng = np.random.default_rng(3)
    base, age = rng.normal(50, 8, children).tolist(), rng.uniform(2, 10, children).tolist()
    noise = rng.normal(0, 3, (children, 2)).tolist()
    junk = ['"a, ""b"""', "#N/A", "", "\u00fc\u00df\u2603", "=1/0", "nan", "-"]
    text = "".join(chr(97 + k % 26) for k in range(width))
    rows = ["notes,id,garbage,arm,visit,baseline,value,age,recorded\n"]
    for i in range(children):
        for j, month in enumerate((6, 12)):
            value = base[i] + (0.3 + 0.2 * (i % 2)) * month + noise[i][j]
            rows.append(f'"{text}, {i}",c{i},{junk[(i + j) % 7]},{i % 2},{month},{base[i]!r},{value!r},'
                        f"{age[i]!r},2024-0{1 + j}-01\n")
    path.write_text("".join(rows))
    return path.stat().st_size


def test_unused_columns_are_not_kept_and_do_not_matter(tmp_path):
    """A 30 MB file whose unused columns hold 2,000 characters of text and garbage per row is analysed as the file
    of its used columns alone, bit for bit, and reading and analysing it take under a quarter of its size in memory
    (tracemalloc's peak; the unused cells are dropped as each line is read)."""
    path = tmp_path / "wide.csv"
    size = _wide_file(path, 7_000, 2_000)
    assert size > 28e6
    slim = tmp_path / "slim.csv"
    pd.read_csv(path)[["id", "arm", "visit", "baseline", "value", "age"]].to_csv(slim, index=False)
    want = analyze(slim, method="ancova", covariates="age").to_json()
    tracemalloc.start()
    try:
        got = analyze(path, method="ancova", covariates="age").to_json()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == want
    assert peak < size / 4, f"{peak / 1e6:.1f} MB traced reading a {size / 1e6:.1f} MB file"


# --- a chunked read is the same read ---------------------------------------------------------------------------------


def _several_trials() -> pd.DataFrame:
    """Three trials of the synthetic data (missed visits, NaN values, text ids, extra columns), interleaved so each
    trial's rows fall in many chunks."""
    frames = [synthetic(seed=seed, n=24).assign(trial=k) for k, seed in enumerate((5, 6, 7))]
    both = pd.concat(frames, ignore_index=True)
    return both.iloc[np.argsort(np.arange(len(both)) % 5, kind="stable")].reset_index(drop=True)


@pytest.mark.parametrize("method", ["ancova", "mmrm"])
def test_a_chunked_read_equals_the_dataframe_exactly(tmp_path, monkeypatch, method):
    """With chunks of 7 rows (many chunks), a file of three trials and its DataFrame give, for each trial, the
    arrays and the ancova and mmrm results of that trial's DataFrame read in one chunk, bit for bit."""
    data = _several_trials()
    path = tmp_path / "trials.csv"
    data.to_csv(path, index=False)
    alone = {k: data[data["trial"] == k].drop(columns="trial").reset_index(drop=True) for k in range(3)}
    want = {k: (read_long(frame, "age"), analyze(frame, method=method, covariates="age").to_json())
            for k, frame in alone.items()}
    chunks = []
    add = long_data._Table.add

    def counted(table, cells, places):
        chunks.append(places.size)
        add(table, cells, places)

    monkeypatch.setattr(long_data._Table, "add", counted)
    monkeypatch.setattr(long_data, "CHUNK_ROWS", 7)
    for k, (arrays, result) in want.items():
        for source in (path, data):
            chunks.clear()
            got = read_long(source, "age", trial=k)
            assert sum(chunks) == len(data) and max(chunks) == 7 and len(chunks) > 20
            assert got.ids.tolist() == arrays.ids.tolist()
            for key in ("months", "values", "observed", "treated", "covariates"):
                assert np.array_equal(getattr(got, key), getattr(arrays, key), equal_nan=True), key
            assert analyze(source, method=method, covariates="age", trial=k).to_json() == result


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_chunked_read_gives_the_same_errors(tmp_path, monkeypatch, case):
    """Every bad file of the CLI tests gives the same error (the same row, the same line) read 3 rows at a time as
    in one chunk, from the file and from its DataFrame: the first bad cell of a column is found in any chunk, and
    the columns are checked in the same order."""
    text, fragments = BAD_FILES[case]
    path = tmp_path / "trial.csv"
    path.write_text(text)
    sources = [path] if "{file}" in fragments else [path, pd.read_csv(path, dtype=str, keep_default_na=False)]

    def errors() -> list[str]:
        out = []
        for data in sources:
            with pytest.raises(SettingsError) as info:
                analyze(data, method="welch")
            out.append(str(info.value))
        return out

    want = errors()
    monkeypatch.setattr(long_data, "CHUNK_ROWS", 3)
    assert errors() == want
