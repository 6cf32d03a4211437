"""Simulated trials as data: what a run simulates, in exactly the long format :func:`cbcp_sim.analyze` reads.

>>> import cbcp_sim
>>> from cbcp_sim.explore.trials import trials
>>> frame = trials("scenarios/default.toml", count=10, seed=1)              # doctest: +SKIP
>>> cbcp_sim.analyze(frame, method="ancova", control="sham", trial=3)       # doctest: +SKIP

One row per child and post-baseline visit observed, with the columns :data:`COLUMNS`:

- ``trial``: the trial, numbered from 0 as a run's replicates are (``SimulationResult.replicate_table()``'s
  ``replicate``): trial ``k`` of ``trials(scenario, count, seed)`` is trial ``k`` of
  ``simulate(scenario, reps=count, seed=seed)`` (the same chunks and random streams, chunk by chunk through the
  engine), with the scores under the scenario's effect;
- ``id``: the child, 1 to ``N`` within each trial, in the order the engine keeps its children;
- ``arm``: the child's arm by its name in ``design.arms`` (``sham``, ``cord blood``);
- ``visit``: months after the first infusion of the scheduled visit (on a trial calendar the child's actual
  time may differ; the analyses compare scheduled visits);
- ``baseline``: the child's baseline score, on every row of the child;
- ``value``: the GMFM-66 score at that visit (or the normal or mvn model's outcome);
- ``age`` (years at enrolment), ``gmfcs`` (level), ``dose`` (10^7 TNC/kg) and ``weight`` (kg): per-child
  covariates.

A visit missed (dropout, a missed calendar visit) is an absent row; a child who missed every post-baseline
visit keeps one row, at the first post-baseline visit, with an empty ``value``, so that every child
randomised is in the data. The visits are those the run simulates: baseline and the primary visit, or every
visit of ``design.visits`` when an analysis reads them all (``mmrm``) or the design is a crossover.

So ``analyze(frame, method=..., control=<the first arm's name>, trial=k)`` (or ``cbcp-sim analyze trials.csv
--control sham --trial k``) of a two-arm parallel scenario gives the run's estimate for trial ``k`` (within
rounding: the engine analyses a chunk of trials at once).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cbcp_sim.errors import SettingsError, printable
from cbcp_sim.models import trial as trial_model
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.engine import point_tasks, run_tasks
from cbcp_sim.run.settings import DEFAULT_SEED, RunSettings, whole_number
from cbcp_sim.run.store import write_atomic
from cbcp_sim.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    import pandas as pd

#: The columns written, in order.
COLUMNS = ("trial", "id", "arm", "visit", "baseline", "value", "age", "gmfcs", "dose", "weight")
#: Most trials written at once (a trial of 72 children and 5 visits is about 360 rows).
MAX_COUNT = 10_000


def chunk_rows(s: Scenario, seed: int, chunk: int, n_reps: int) -> dict[str, np.ndarray]:
    """Chunk ``chunk`` of a run seeded with ``seed`` (``n_reps`` trials) as the columns of long data (``trial``
    counted within the chunk, ``arm`` the index into ``design.arms``), from the same streams as the run's chunk."""
    data = trial_model.generate(s, n_reps, Streams(seed, chunk))
    observed = data.observed
    arm = np.broadcast_to(data.arm, observed.shape[:2])  # a view repeated over trials when children are by arm
    rows = observed[..., 1:].copy()
    rows[..., 0] |= ~rows.any(axis=-1)  # a child with no value after baseline keeps one row, its value empty
    r, i, v = np.nonzero(rows)
    v = v + 1
    baseline = np.where(observed[..., 0], data.values[..., 0], np.nan)
    return {"trial": r, "id": i + 1, "arm": arm[r, i], "visit": data.months[v], "baseline": baseline[r, i],
            "value": np.where(observed[r, i, v], data.values[r, i, v], np.nan),
            **{name: x[r, i] for name, x in data.covariates.items()}}


def trials(scenario: Scenario | str | PathLike[str], count: int = 1, seed: int = DEFAULT_SEED, *,
           out: str | PathLike[str] | None = None) -> pd.DataFrame:
    """The first ``count`` trials of a run of ``scenario`` seeded with ``seed``, as long data (see the module
    docstring): a pandas DataFrame with the columns :data:`COLUMNS`.

    Parameters
    ----------
    scenario : Scenario, or a scenario file (path or bundled name)
    count : trials, 1 to :data:`MAX_COUNT`; trial ``k`` is trial ``k`` of a run of ``count`` trials
    seed : the run's seed (non-negative)
    out : also write the data to this CSV file (header, one row per line, an empty cell where a value is missing;
        numbers with every digit, so reading the file gives the same numbers)

    Raises
    ------
    SettingsError
        On ``count``, ``seed`` or ``out`` (a file that cannot be written).
    """
    import pandas as pd

    count = whole_number("count", count, 1, MAX_COUNT)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    settings = RunSettings(reps=count, seed=seed, progress=False)
    tasks = point_tasks(scenario, settings, work=chunk_rows)
    parts = run_tasks(tasks, settings, label="trials")
    columns = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    first = np.cumsum([0] + [t.n_reps for t in tasks[:-1]])  # trial number of each chunk's first trial
    columns["trial"] = np.concatenate([part["trial"] + f for f, part in zip(first, parts, strict=True)])
    names = np.array(scenario.design.arms, dtype=object)
    columns["arm"] = names[columns["arm"]]
    if "gmfcs" in columns:
        columns["gmfcs"] = columns["gmfcs"].astype(np.int64)
    frame = pd.DataFrame({k: columns[k] for k in (*[c for c in COLUMNS if c in columns],
                                                  *[c for c in columns if c not in COLUMNS])})
    if out is not None:
        write_csv(frame, out)
    return frame


def write_csv(frame: pd.DataFrame, out: str | PathLike[str]) -> Path:
    """Write ``frame`` to the CSV file ``out`` (no index; an empty cell for a missing value) whole or not at all;
    a SettingsError on ``out`` if it cannot be written."""
    path = Path(out)
    if "\0" in str(path):
        raise SettingsError("out", "a file name cannot hold a NUL character")
    try:
        if path.is_dir():
            raise SettingsError("out", printable(f"{path} is a directory, not a file name"))
        write_atomic(path, frame.to_csv(index=False).encode(), source="out")
    except OSError as exc:  # a name too long, a symlink loop, a full disk, ...
        raise SettingsError("out", printable(f"cannot write {path}: {exc.strerror or exc}")) from None
    return path
