"""Save as you go: each finished chunk of a long run written atomically to a directory, read back on resume.

A directory holds ``manifest.json`` (what was asked: the scenario's digest and the options that decide the
result), ``chunks/`` (one ``.npz`` per finished chunk, named by a hash of the point's scenario, the seed, the
chunk and its size, so a chunk is never computed twice) and ``log.jsonl`` (timings and host names, kept out
of the results). A file appears only complete: it is written to a temporary name, flushed to disk and
renamed (``os.replace`` is atomic), so a run killed at any moment leaves either the whole chunk or nothing.
Chunks are plain arrays (``numpy.savez``, read with ``allow_pickle=False``), never pickles.

Nothing read back is trusted. Each chunk holds a small JSON member (``meta``: its key, its replicate count and
the results version) and ``checksums.jsonl`` records, before the chunk is renamed into place, its key, the
sha256 of its bytes and its replicate count. A chunk is used only if its bytes have that checksum, its zip
directory holds only the expected members, stored uncompressed and no larger than the file (so no read
inflates beyond the file's size), each array's header agrees with its size, its layout names only known
records, its embedded key and replicate count agree and its arrays have one row per replicate; any other is
set aside (renamed ``KEY.npz.bad-TIME``, one line on standard error and in the log) and computed again.

The store writes only inside its directory and never through a symbolic link: ``chunks/`` and every file it
writes are refused (an :class:`InputError` naming ``out``) if they are links, and files are opened with
``O_NOFOLLOW``. One writer per directory: the first write takes an advisory lock (``fcntl.flock`` on
``DIR/.lock``, which holds the writer's pid) kept until the process ends or its last :class:`Store` of that
directory is freed; a second process gets a one-line error naming the directory and that pid. The kernel
releases a flock when its holder dies, so a lock is never stale: the ``.lock`` file left by a killed run is
simply taken over. Temporary files left by a kill are removed once the lock is held.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import socket
import sys
import time
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cbcp_sim.analysis import Estimates
from cbcp_sim.analysis.arm_means import ArmMeans
from cbcp_sim.analysis.dose_response import DoseResponses
from cbcp_sim.analysis.dose_slope import DoseSlopes
from cbcp_sim.analysis.tipping_point import DeltaAdjustment
from cbcp_sim.errors import InputError, printable
from cbcp_sim.run.monitoring import Monitoring

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
#: Key, sha256 and replicate count of each chunk saved, one JSON line each (the last line of a key counts).
CHECKSUMS = "checksums.jsonl"
#: The advisory lock of the one writer of a directory (holds its pid).
LOCK = ".lock"
#: A chunk file larger than this is not read.
MAX_CHUNK_BYTES = 1 << 30
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MEMBER = re.compile(r"(layout|meta|a\d+)\.npy")
#: Part of every chunk's name and every manifest: raise it when a change to the models or analyses changes
#: results, so no run resumes from chunks that older code computed. 3: the MMRM fit reuses a Hessian near its optimum
#: (chord steps) and sums its Kronecker terms in one product, which moves MMRM estimates and SEs at rounding level.
#: 4: the trial calendar draws each referral's gap, eligibility and unit from chunk streams by trial and step
#: (issue 25), no longer one generator per trial. 5: the MMRM's REML fit in closed form under monotone dropout
#: (factored likelihood), which moves its estimates and SEs at rounding level (1e-13). 6: MCP-Mod's two-parameter
#: fits by one batched trust-region search, which moves the TDs at the optimiser's precision (1e-9). 7: the normal
#: model's parallel-arm t-test runs draw each arm's count seen, mean and sum of squares, not children (new random
#: layout).
RESULTS_VERSION = 7
#: Dataclasses stored field by field inside a chunk, by name.
RECORDS = {"Estimates": Estimates, "Monitoring": Monitoring, "ArmMeans": ArmMeans, "DeltaAdjustment": DeltaAdjustment,
           "DoseSlopes": DoseSlopes, "DoseResponses": DoseResponses}


#: What each chunk key computed in this process stands for (digest, seed, chunk, n_reps): embedded in the chunk
#: when saved and checked when read back. Bounded: past the bound, keys are no longer remembered.
_KEYS: dict[str, tuple[str, int, int, int]] = {}
_MAX_KEYS = 1_000_000


def chunk_key(digest: str, seed: int, chunk: int, n_reps: int) -> str:
    """File stem of one chunk of the scenario with ``digest``: the same inputs always give the same name."""
    key = hashlib.sha256(f"{RESULTS_VERSION}|{digest}|{seed}|{chunk}|{n_reps}".encode()).hexdigest()[:24]
    if len(_KEYS) < _MAX_KEYS:
        _KEYS[key] = (digest, seed, chunk, n_reps)
    return key


def check_path(path: str | Path, source: str) -> Path:
    """``path`` as a Path, or an :class:`InputError` naming ``source`` if no file can be there: a NUL character,
    a name too long, a symbolic-link loop or a file where a directory should be (absent is fine)."""
    if "\0" in str(path):
        raise InputError(source, "a path cannot hold a NUL character")
    path = Path(path)
    try:
        os.lstat(path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise InputError(source, printable(f"cannot use {path}: {getattr(exc, 'strerror', None) or exc}")) from None
    return path


def _refuse_links(path: Path, root: Path | None, source: str) -> None:
    """An :class:`InputError` naming ``source`` if ``path``, or a directory between ``root`` and it, is a link."""
    parts = [path]
    if root is not None:
        parent = path.parent
        while parent != root and root in parent.parents:
            parts.append(parent)
            parent = parent.parent
    for part in parts:
        if part.is_symlink():
            raise InputError(source, printable(f"{part} is a symbolic link: nothing is written through a link "
                                               f"({'outside ' + str(root) if root is not None else 'elsewhere'}); "
                                               "remove it"))


def write_atomic(path: Path, data: bytes, *, root: Path | None = None, source: str = "out") -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete, whatever happens meanwhile.

    A ``path`` that is a symbolic link (or, with ``root``, under a linked directory below ``root``) is refused
    with an :class:`InputError` naming ``source``; the temporary file is created new, never through a link."""
    path = Path(path)
    _refuse_links(path, root, source)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o666)
        with open(fd, "wb") as fh:
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
        if not tmp.is_symlink():
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
    """The value of a layout made by :func:`_flatten`; a :class:`ValueError` for anything else (an unknown
    record, a missing array, a malformed entry)."""
    if layout is None:
        return None
    if not isinstance(layout, dict):
        raise ValueError(f"not a layout entry: {type(layout).__name__}")
    if "array" in layout:
        name = layout["array"]
        if not isinstance(name, str) or name not in arrays:
            raise ValueError(f"no array {name!r}")
        return arrays[name]
    if "record" in layout:
        record = RECORDS.get(layout["record"]) if isinstance(layout["record"], str) else None
        if record is None or not isinstance(layout.get("fields"), dict):
            raise ValueError(f"unknown record {layout['record']!r}")
        return record(**{k: _unflatten(v, arrays) for k, v in layout["fields"].items()})
    items = layout.get("items")
    if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
        raise ValueError("malformed items")
    return {tuple(k) if isinstance(k, list) else k: _unflatten(v, arrays) for k, v in items}


def dumps(chunk: Any, key: str | None = None) -> bytes:
    """A :class:`~cbcp_sim.run.engine.ChunkResult` as the bytes of an ``.npz`` file (members stored, not
    compressed); with ``key`` a ``meta`` member records the key, the replicate count and the results version."""
    arrays: dict[str, np.ndarray] = {}
    layout = {f.name: _flatten(getattr(chunk, f.name), arrays) for f in dataclasses.fields(chunk)}
    if key is not None:
        meta: dict[str, Any] = {"key": key, "n_reps": replicates(chunk), "results_version": RESULTS_VERSION}
        if key in _KEYS:
            meta.update(zip(("digest", "seed", "chunk", "n_reps"), _KEYS[key], strict=True))
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, layout=np.array(json.dumps(layout)), **arrays)
    return buffer.getvalue()


def replicates(chunk: Any) -> int | None:
    """The replicate count of a chunk: the one length of the first axis of its top-level arrays and of every
    array in its records (None if it has none or they disagree)."""
    lengths: set[int] = set()

    def visit(value: Any, in_record: bool) -> None:
        if isinstance(value, np.ndarray):
            if in_record:
                lengths.add(value.shape[0] if value.ndim else -1)
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name), True)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v, in_record)

    for f in dataclasses.fields(chunk):
        value = getattr(chunk, f.name)
        visit(value, isinstance(value, np.ndarray))
    return lengths.pop() if len(lengths) == 1 and -1 not in lengths else None


def _check_zip(data: bytes) -> None:
    """A :class:`ValueError` unless ``data`` is a zip of the expected ``.npy`` members, stored uncompressed, each
    no larger than the file and with an array header that agrees with its size: no read can inflate."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        if "layout.npy" not in names or len(set(names)) != len(names):
            raise ValueError("members missing or repeated")
        for info in infos:
            if not _MEMBER.fullmatch(info.filename):
                raise ValueError(f"unexpected member {printable(info.filename)!r}")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data) \
                    or info.file_size != info.compress_size:
                raise ValueError(f"member {info.filename} is compressed or larger than the file "
                                 f"({info.file_size:,} bytes)")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"member {info.filename}: array format {version}")
                if dtype.hasobject:
                    raise ValueError(f"member {info.filename} holds objects")
                size = math.prod(shape) * dtype.itemsize
                if member.tell() + size != info.file_size:
                    raise ValueError(f"member {info.filename}: its header says {size:,} bytes of data, it holds "
                                     f"{info.file_size - member.tell():,}")


def _decode(data: bytes, cls: type) -> tuple[Any, dict[str, Any] | None]:
    """The chunk of class ``cls`` in ``data`` and its ``meta`` (None if absent), checked as :func:`_check_zip`
    says; a :class:`ValueError` (or another ordinary exception) if it is not a well-formed chunk."""
    _check_zip(data)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    layout = json.loads(str(arrays.pop("layout")))
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else None
    if not isinstance(layout, dict) or (meta is not None and not isinstance(meta, dict)):
        raise ValueError("malformed layout")
    return cls(**{k: _unflatten(v, arrays) for k, v in layout.items()}), meta


def loads(data: bytes | Path, cls: type) -> Any:
    """The chunk result of class ``cls`` stored by :func:`dumps` (checked, read without pickle and without
    inflating anything; a :class:`ValueError` if it is not a well-formed chunk)."""
    if not isinstance(data, bytes):
        data = _read_bounded(Path(data))
    return _decode(data, cls)[0]


def _read_bounded(path: Path, limit: int = MAX_CHUNK_BYTES) -> bytes:
    """The bytes of ``path``, not through a link and at most ``limit`` of them (else a :class:`ValueError`)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with open(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise ValueError(f"{size:,} bytes, more than a chunk holds ({limit:,})")
        return fh.read(limit + 1)


#: What a damaged or foreign file can raise while it is read and decoded.
class _Unrecorded(ValueError):
    """A chunk whose checksum was never recorded: not trusted, and said once per directory, not per chunk."""


_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
               zipfile.BadZipFile, UnicodeError, OverflowError, MemoryError)


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


class _Lock:
    """The advisory lock of one directory held by this process (released when freed or at exit)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing the last descriptor releases the flock


#: The locks this process holds, by the real path of their directory: Stores of one directory share one.
_LOCKS: dict[str, weakref.ref[_Lock]] = {}


def _lock(root: Path, source: str) -> _Lock:
    """The lock of ``root`` for this process; an :class:`InputError` naming ``source`` if another holds it."""
    real = os.path.realpath(root)
    held = _LOCKS.get(real)
    lock = held() if held is not None else None
    path = root / LOCK
    with contextlib.suppress(OSError):  # still the directory's lock file (not one removed and made again)
        if lock is not None and os.stat(path, follow_symlinks=False).st_ino == os.fstat(lock.fd).st_ino:
            return lock
    _refuse_links(path, root, source)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
    except OSError as exc:
        raise InputError(source, printable(f"cannot lock {root}: {exc.strerror or exc}")) from None
    lock = _Lock(fd)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another open file: another process (or a fork of this one)
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            del lock
            holder = f"process {holder}" if holder.isdigit() else "another process"
            raise InputError(source, printable(f"{root} is in use: {holder} is writing to it (it holds {path}); "
                                               "wait for it to finish or use another directory")) from None
        except OSError:  # no locks on this file system (some network ones): go on unlocked
            pass
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _LOCKS[real] = weakref.ref(lock)
    return lock


class Store:
    """A run directory: the manifest of what is computed, finished chunks, and a log.

    Opening a directory that already holds a manifest resumes it if the manifest's ``inputs`` are the same,
    and refuses (an :class:`InputError` naming ``source``, the parameter that gave the directory) if they differ.
    Nothing is written until the first chunk or output, so a run refused for a bad option leaves no directory
    behind; the manifest is written before any chunk, so a directory with chunks always says what they are.
    The first write takes the directory's lock (see the module's doc), kept while the Store (or another Store of
    this process on the same directory) lives; chunks are verified before use and set aside if they fail.
    """

    def __init__(self, root: str | Path, kind: str, inputs: dict[str, Any], *, source: str = "out") -> None:
        self.root = check_path(root, source)
        self.source = source
        self.kind = kind
        inputs = {**inputs, "results_version": RESULTS_VERSION}
        self.digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self._manifest = json.dumps({"kind": kind, "inputs_digest": self.digest, "inputs": inputs}, indent=1,
                                    sort_keys=True, default=str) + "\n"
        self.chunks = self.root / "chunks"
        self._lock: _Lock | None = None
        self._sums: dict[str, tuple[str, int | None]] | None = None
        self._verified: dict[str, Any] = {}
        self._told_unrecorded = False
        if self.root.exists() and not self.root.is_dir():
            raise InputError(source, f"{self.root} is a file, not a directory")
        for name in (MANIFEST, "chunks", "log.jsonl", CHECKSUMS, LOCK):
            _refuse_links(self.root / name, self.root, source)
        self.resumed = self._check_manifest()
        if not self.resumed and self.root.is_dir() and any(
                p.name not in ("chunks", LOCK) and not p.name.endswith(".tmp") for p in self.root.iterdir()):
            raise InputError(source, f"{self.root} is not empty and holds no {MANIFEST}; use a new directory")

    def _check_manifest(self) -> bool:
        """Whether the directory holds a manifest (of these inputs: another is refused)."""
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            return False
        try:
            old = json.loads(_read_bounded(manifest, 1 << 26))
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise InputError(self.source, printable(f"{manifest} cannot be read ({exc}); use a new directory")) \
                from None
        if old.get("kind") != self.kind or old.get("inputs_digest") != self.digest:
            raise InputError(self.source, printable(
                f"{self.root} holds a different {old.get('kind', 'run')} (inputs digest "
                f"{old.get('inputs_digest')}, now {self.digest}: the scenario or an setting changed); use a new "
                "directory or remove it"))
        return True

    def _open(self) -> None:
        """Take the lock, create the directory and its manifest, once, before the first file; remove the
        temporary files a killed run left."""
        if self._lock is not None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(self.source, printable(f"cannot write to {self.root}: {exc.strerror or exc}")) \
                from None
        lock = _lock(self.root, self.source)
        self._check_manifest()  # another writer may have started it since this Store was made
        try:
            if not (self.root / MANIFEST).is_file():
                write_atomic(self.root / MANIFEST, self._manifest.encode(), root=self.root, source=self.source)
            _refuse_links(self.chunks, self.root, self.source)
            self.chunks.mkdir(exist_ok=True)
            for directory in (self.root, self.chunks):
                for stale in directory.glob(".*.tmp"):  # left by a run killed while writing
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            raise InputError(self.source, printable(f"cannot write to {self.root}: {exc.strerror or exc}")) \
                from None
        self._lock = lock

    def path(self, key: str) -> Path:
        return self.chunks / f"{key}.npz"

    def _checksums(self) -> dict[str, tuple[str, int | None]]:
        """Each saved chunk's sha256 and replicate count by key, from ``checksums.jsonl`` (bad lines skipped)."""
        if self._sums is None:
            self._sums = {}
            try:
                text = _read_bounded(self.root / CHECKSUMS, 1 << 28).decode("utf-8", "replace")
            except (OSError, ValueError):
                text = ""
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                    self._sums[str(entry["key"])] = (str(entry["sha256"]), entry.get("n_reps"))
                except (ValueError, KeyError, TypeError):
                    continue
        return self._sums

    def has(self, key: str) -> bool:
        """Whether a verified chunk ``key`` is stored (one that fails verification is set aside: False)."""
        if key in self._verified:
            return True
        path = self.path(key)
        if not (path.is_file() or path.is_symlink()):
            return False
        from cbcp_sim.run.engine import ChunkResult  # the one class stored (engine imports this module)

        try:
            self._verified[key] = self._verify(key, ChunkResult)
            return True
        except _UNREADABLE as exc:
            self._set_aside(path, exc)
            return False

    def _verify(self, key: str, cls: type) -> Any:
        path = self.path(key)
        if path.is_symlink():
            raise ValueError("a symbolic link")
        data = _read_bounded(path)
        recorded = self._checksums().get(key)
        if recorded is None:
            raise _Unrecorded(f"no checksum recorded in {CHECKSUMS}")
        if hashlib.sha256(data).hexdigest() != recorded[0]:
            raise ValueError("checksum mismatch")
        chunk, meta = _decode(data, cls)
        if meta is None or meta.get("key") != key or meta.get("results_version") != RESULTS_VERSION:
            raise ValueError(f"it belongs to another chunk ({printable(str((meta or {}).get('key')))})")
        if "digest" in meta and chunk_key(meta["digest"], meta.get("seed"), meta.get("chunk"),  # type: ignore[arg-type]
                                          meta.get("n_reps")) != key:  # type: ignore[arg-type]
            raise ValueError("its embedded point and chunk do not give its key")
        n = replicates(chunk)
        expected = _KEYS[key][3] if key in _KEYS else n
        if n is None or meta.get("n_reps") != n or recorded[1] != n or expected != n:
            raise ValueError(f"{n} replicates, recorded {meta.get('n_reps')} and {recorded[1]}, expected {expected}")
        return chunk

    def _set_aside(self, path: Path, exc: BaseException) -> None:
        """Rename a chunk that failed verification to ``NAME.bad-TIME`` and say so in one line."""
        self._open()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        bad = path.with_name(f"{path.name}.bad-{stamp}-{time.time_ns() % 10**9:09d}")
        reason = printable(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc))[:200]
        try:
            os.replace(path, bad)
        except OSError as error:
            path.unlink(missing_ok=True)
            bad = Path(f"(removed: {error.strerror})")
        if not isinstance(exc, _Unrecorded):
            print(printable(f"warning: {self.source}: chunk {path.name} failed verification ({reason}); set aside "
                            f"as {bad.name}, computing it again"), file=sys.stderr)
        elif not self._told_unrecorded:  # a directory of an older version: every chunk is so, one line says it
            self._told_unrecorded = True
            print(printable(f"warning: {self.source}: {self.root} holds chunks with no checksum recorded (an older "
                            "version wrote them, or a hand): each is set aside as NAME.bad-TIME and computed again"),
                  file=sys.stderr)
        self.log(event="bad-chunk", chunk=path.name, reason=reason, moved_to=bad.name)

    def load(self, key: str, cls: type) -> Any:
        """The chunk ``key``, as verified by :meth:`has` (called first if it was not)."""
        chunk = self._verified.pop(key, None)
        if chunk is not None:
            return chunk
        try:
            return self._verify(key, cls)
        except _UNREADABLE as exc:
            raise InputError(self.source, printable(f"chunk {key} cannot be used ({exc})")) from None

    def save(self, key: str, chunk: Any) -> None:
        """Write chunk ``key`` atomically, its checksum recorded first (so a chunk without one is never used)."""
        self._open()
        data = dumps(chunk, key)
        digest, n = hashlib.sha256(data).hexdigest(), replicates(chunk)
        self._append(CHECKSUMS, json.dumps({"key": key, "sha256": digest, "n_reps": n}) + "\n", sync=True)
        self._checksums()[key] = (digest, n)
        try:
            write_atomic(self.path(key), data, root=self.root, source=self.source)
        except OSError as exc:
            raise InputError(self.source, printable(f"cannot write to {self.root}: {exc.strerror or exc}")) \
                from None

    def _append(self, name: str, text: str, *, sync: bool = False) -> None:
        """Append ``text`` to file ``name`` of the directory, never through a link."""
        path = self.root / name
        _refuse_links(path, self.root, self.source)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o666)
            with open(fd, "a") as fh:
                fh.write(text)
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(self.source, printable(f"cannot write {path}: {exc.strerror or exc}")) from None

    def log(self, **entry: Any) -> None:
        """Append one line to ``log.jsonl`` (time, host and process added)."""
        entry = {"time": round(time.time(), 3), "host": socket.gethostname(), "pid": os.getpid(), **entry}
        self._open()
        self._append("log.jsonl", json.dumps(entry, default=str) + "\n")

    def write(self, name: str, data: bytes | str) -> Path:
        """An output file of the run, written atomically (never through a link)."""
        self._open()
        path = self.root / name
        try:
            write_atomic(path, data.encode() if isinstance(data, str) else data, root=self.root, source=self.source)
        except OSError as exc:
            raise InputError(self.source, printable(f"cannot write {path}: {exc.strerror or exc}")) from None
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
