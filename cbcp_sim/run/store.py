"""Save as you go: each finished chunk of a long run written atomically to a directory, read back on resume.

A directory holds ``manifest.json`` (what was asked: the scenario's digest and the options that decide the
result), ``chunks/`` (one ``.npz`` per finished chunk, named by a hash of the point's scenario, the seed, the
chunk and its size, so a chunk is never computed twice) and ``log.jsonl`` (timings and host names, kept out
of the results). A file appears only complete: it is written to a temporary name, flushed to disk and
renamed (``os.replace`` is atomic), so a run killed at any moment leaves either the whole chunk or nothing.
Chunks are plain arrays (``numpy.savez``, read with ``allow_pickle=False``), never pickles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from cbcp_sim.analysis import Estimates
from cbcp_sim.errors import InputError
from cbcp_sim.run.monitoring import Monitoring

MANIFEST = "manifest.json"
#: Part of every chunk's name and every manifest: raise it when a change to the models or analyses changes
#: results, so no run resumes from chunks that older code computed.
RESULTS_VERSION = 1
#: Dataclasses stored field by field inside a chunk, by name.
RECORDS = {"Estimates": Estimates, "Monitoring": Monitoring}


def chunk_key(digest: str, seed: int, chunk: int, n_reps: int) -> str:
    """File stem of one chunk of the scenario with ``digest``: the same inputs always give the same name."""
    return hashlib.sha256(f"{RESULTS_VERSION}|{digest}|{seed}|{chunk}|{n_reps}".encode()).hexdigest()[:24]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete, whatever happens meanwhile."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    finally:
        tmp.unlink(missing_ok=True)


def _flatten(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON layout of ``value`` whose arrays are moved into ``arrays`` under numbered names."""
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if value is None:
        return None
    if dataclasses.is_dataclass(value):
        return {"record": type(value).__name__,
                "fields": {f.name: _flatten(getattr(value, f.name), arrays)
                           for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {"items": [[list(k) if isinstance(k, tuple) else k, _flatten(v, arrays)]
                          for k, v in value.items()]}
    raise TypeError(f"cannot store {type(value).__name__} in a chunk")


def _unflatten(layout: Any, arrays: Any) -> Any:
    if layout is None:
        return None
    if "array" in layout:
        return arrays[layout["array"]]
    if "record" in layout:
        return RECORDS[layout["record"]](**{k: _unflatten(v, arrays) for k, v in layout["fields"].items()})
    return {tuple(k) if isinstance(k, list) else k: _unflatten(v, arrays) for k, v in layout["items"]}


def dumps(chunk: Any) -> bytes:
    """A :class:`~cbcp_sim.run.engine.ChunkResult` as the bytes of an ``.npz`` file."""
    arrays: dict[str, np.ndarray] = {}
    layout = {f.name: _flatten(getattr(chunk, f.name), arrays) for f in dataclasses.fields(chunk)}
    buffer = io.BytesIO()
    np.savez(buffer, layout=np.array(json.dumps(layout)), **arrays)
    return buffer.getvalue()


def loads(data: bytes | Path, cls: type) -> Any:
    """The chunk result of class ``cls`` stored by :func:`dumps`."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with np.load(source, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    layout = json.loads(str(arrays.pop("layout")))
    return cls(**{k: _unflatten(v, arrays) for k, v in layout.items()})


def json_safe(value: Any) -> Any:
    """Plain JSON values; NaN and infinities (e.g. an MCSE from one replicate) become null."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Store:
    """A run directory: the manifest of what is computed, finished chunks, and a log.

    Opening a directory that already holds a manifest resumes it if the manifest's ``inputs`` are the same,
    and refuses (an :class:`InputError` naming ``source``, the parameter that gave the directory) if they differ.
    Nothing is written until the first chunk or output, so a run refused for a bad option leaves no directory
    behind; the manifest is written before any chunk, so a directory with chunks always says what they are.
    """

    def __init__(self, root: str | Path, kind: str, inputs: dict[str, Any], *, source: str = "out") -> None:
        self.root = Path(root)
        self.source = source
        inputs = {**inputs, "results_version": RESULTS_VERSION}
        self.digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self._manifest = json.dumps({"kind": kind, "inputs_digest": self.digest, "inputs": inputs}, indent=1,
                                    sort_keys=True, default=str) + "\n"
        self.chunks = self.root / "chunks"
        manifest = self.root / MANIFEST
        if self.root.exists() and not self.root.is_dir():
            raise InputError(source, f"{self.root} is a file, not a directory")
        self.resumed = manifest.is_file()
        if self.resumed:
            try:
                old = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(source, f"{manifest} cannot be read ({exc}); use a new directory") from None
            if old.get("kind") != kind or old.get("inputs_digest") != self.digest:
                raise InputError(source, f"{self.root} holds a different {old.get('kind', 'run')} (inputs digest "
                                            f"{old.get('inputs_digest')}, now {self.digest}: the scenario or an "
                                            "setting changed); use a new directory or remove it")
            for stale in self.chunks.glob(".*.tmp"):  # left by a run killed while writing
                stale.unlink(missing_ok=True)
        elif self.root.is_dir() and any(p.name != "chunks" and not p.name.endswith(".tmp")
                                        for p in self.root.iterdir()):
            raise InputError(source, f"{self.root} is not empty and holds no {MANIFEST}; use a new directory")

    def _open(self) -> None:
        """Create the directory and its manifest, once, before the first file."""
        if not (self.root / MANIFEST).is_file():
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                write_atomic(self.root / MANIFEST, self._manifest.encode())
            except OSError as exc:
                raise InputError(self.source, f"cannot write to {self.root}: {exc.strerror or exc}") from None
        self.chunks.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        return self.chunks / f"{key}.npz"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str, cls: type) -> Any:
        return loads(self.path(key), cls)

    def save(self, key: str, chunk: Any) -> None:
        self._open()
        write_atomic(self.path(key), dumps(chunk))

    def log(self, **entry: Any) -> None:
        """Append one line to ``log.jsonl`` (time, host and process added)."""
        entry = {"time": round(time.time(), 3), "host": socket.gethostname(), "pid": os.getpid(), **entry}
        self._open()
        with (self.root / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")

    def write(self, name: str, data: bytes | str) -> Path:
        """An output file of the run, written atomically."""
        self._open()
        path = self.root / name
        write_atomic(path, data.encode() if isinstance(data, str) else data)
        return path

    def write_json(self, name: str, value: Any) -> Path:
        """A JSON output (NaN and infinities must already be None)."""
        return self.write(name, json.dumps(value, indent=1, allow_nan=False) + "\n")

    def write_result(self, result: dict[str, Any], tables: dict[str, Any], scenario_toml: str) -> None:
        """A finished run's ``scenario.toml`` (the resolved scenario that reproduces it), ``result.json`` (its JSON;
        NaN and infinities as null) and its tables by file name."""
        self.write("scenario.toml", scenario_toml)
        self.write_json("result.json", json_safe(result))
        for name, table in tables.items():
            self.write_table(name, table)

    def write_table(self, name: str, table: Any) -> Path:
        """A DataFrame as CSV (``.csv``) or Parquet (``.parquet``), the same bytes for the same table."""
        if name.endswith(".parquet"):
            buffer = io.BytesIO()
            try:
                table.to_parquet(buffer, index=False)
            except (ImportError, ValueError, TypeError) as exc:  # pyarrow missing, or a column of mixed types
                raise InputError("parquet", f"cannot write {name}: {exc}") from None
            return self.write(name, buffer.getvalue())
        return self.write(name, table.to_csv(index=False, lineterminator="\n"))


class MemoryStore:
    """The chunk interface of :class:`Store`, in memory: the first ``capacity`` chunks saved are kept for reuse
    within one process (later ones are not, which bounds memory); nothing is written."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._chunks: dict[str, Any] = {}

    def has(self, key: str) -> bool:
        return key in self._chunks

    def load(self, key: str, cls: type) -> Any:
        return self._chunks[key]

    def save(self, key: str, chunk: Any) -> None:
        if len(self._chunks) < self.capacity:
            self._chunks[key] = chunk

    def log(self, **entry: Any) -> None:
        """Nothing to log to."""
