"""Atomic file writes and the one ``.npz`` reader (weights of every format: :mod:`xavinit.formats`).

Results and weights are written to a temporary file in the target folder and renamed into place,
so an interrupted or failed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from xavinit.errors import XavinitError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise XavinitError(f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise XavinitError(f"cannot write {str(target)!r}: {error.strerror}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(handle, mode, encoding=encoding) as stream:
            yield stream
        os.replace(temporary, target)
    except OSError as error:  # a full disk, a quota, a vanished folder: one line, nothing left
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise XavinitError(f"cannot write {str(target)!r}: {error.strerror or error}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class NpzWriter:
    """Write arrays one by one into an ``.npz`` (a zip of ``.npy`` files), atomically.

    Only one array needs to be in memory at a time, unlike ``numpy.savez``. Use it as a context
    manager inside :func:`atomic_write`: on success the archive is finished; on an error (a full
    disk, Ctrl-C) it is abandoned without writing more, and the temporary file is removed.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(
            stream, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True
        )

    def add(self, name: str, array: np.ndarray) -> None:
        with self._zip.open(f"{name}.npy", mode="w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self._zip.close()
        else:  # abandon: ZipFile.close (and its __del__) would write to a failed stream
            self._zip.fp = None


NPZ_EXPECTED = "an .npz archive of numpy arrays (numpy.savez)"
"""What :func:`read_npz` says a file should be, unless its caller says more precisely."""

ZIP_EXPANSION_LIMIT = 100
"""A compressed zip member may declare at most this many times its compressed size (weights
compress by a few times at most; a larger claim is a zip bomb or a damaged archive)."""


def check_zip_sizes(archive: zipfile.ZipFile, label: str, path: str | Path) -> None:
    """Refuse an archive whose members declare sizes far beyond the file (a zip bomb).

    A stored member must declare its compressed size; a compressed one at most
    ``ZIP_EXPANSION_LIMIT`` times it (plus 1 MiB). Checked before anything is decompressed.

    Raises:
        XavinitError: naming the member and its declared size.
    """
    for info in archive.infolist():
        limit = info.compress_size * ZIP_EXPANSION_LIMIT + (1 << 20)
        if info.compress_type == zipfile.ZIP_STORED:
            limit = info.compress_size
        if info.file_size > limit:
            raise XavinitError(
                f"{label}: {path} is refused: member {info.filename!r} declares {info.file_size} "
                f"bytes from {info.compress_size} in the file (a zip bomb or a damaged archive)"
            )


@contextlib.contextmanager
def _npz_archive(
    path: str | Path, label: str, expected: str, current: list[str | None]
) -> Iterator[Any]:
    """``np.load`` on our own handle, every failure turned into one :class:`XavinitError` line.

    ``current[0]`` names the array being read, for messages.
    """
    path = Path(path)
    if not path.exists():
        raise XavinitError(f"{label}: {path} does not exist; expected {expected}")
    if path.is_dir():
        raise XavinitError(f"{label}: {path} is a folder; expected {expected}")
    try:
        with path.open("rb") as stream:  # our handle: np.load leaks its own on a damaged zip
            signature = stream.read(4)
            if signature not in (b"PK\x03\x04", b"PK\x05\x06"):
                kind = "a .npy array" if signature == b"\x93NUM" else "not a zip archive"
                raise XavinitError(f"{label}: {path} is {kind}; expected {expected}")
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as archive:
                check_zip_sizes(archive.zip, label, path)
                yield archive
            return
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        reason = f"a damaged or corrupt .npz ({_where(current[0])}{error or type(error).__name__})"
    except XavinitError:
        raise
    except ValueError as error:  # pickled data or object arrays, refused by allow_pickle=False
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        reason = f"unreadable ({_where(current[0])}{detail})"
    except OSError as error:
        reason = f"unreadable ({_where(current[0])}{error.strerror or error})"
    raise XavinitError(f"{label}: {path} is {reason}; expected {expected}")


def _select(
    names: list[str], keys: Sequence[str] | None, label: str, path: str | Path
) -> list[str]:
    if not keys:
        return names
    selected = [n for n in names if any(fnmatch.fnmatchcase(n, k) for k in keys)]
    if not selected:
        raise XavinitError(
            f"{label}: no array in {path} matches {', '.join(keys)}; "
            f"arrays: {', '.join(names) or 'none'}"
        )
    return selected


def read_npz(
    path: str | Path,
    label: str,
    keys: Sequence[str] | None = None,
    *,
    expected: str = NPZ_EXPECTED,
) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, in file order, read into memory with ``allow_pickle=False``.

    Every ``.npz`` xavinit reads goes through here: weight matrices, training checkpoints and
    the ``npz`` and ``mnist`` datasets (and :func:`npz_headers` lists one without reading it).
    The file is opened by this function and closed on every path, since ``np.load`` given a
    path leaks its handle when the zip is damaged.

    Args:
        path: the ``.npz`` file.
        label: what is reading it, the start of every message: ``"npz"``, ``"weights"``...
        keys: names or shell-style patterns (``normalized/*``) of the arrays to read; the others
            are never read. None or empty: every array.
        expected: what the file should be, the end of the messages about the file itself.

    Raises:
        XavinitError: one line, ``{label}: {path} ...``: the file is missing, a folder, not a
            zip archive (a ``.npy``, say), a damaged zip, a zip bomb, holds pickled data, an
            object array or a member that is not a ``.npy`` array, or no array matches ``keys``.
    """
    current: list[str | None] = [None]
    with _npz_archive(path, label, expected, current) as archive:
        arrays: dict[str, np.ndarray] = {}
        for key in _select(list(archive.files), keys, label, path):
            current[0] = key
            array = archive[key]
            if not isinstance(array, np.ndarray):  # np.load gives a non-.npy member's bytes
                raise XavinitError(
                    f"{label}: {Path(path)} is unreadable (member {key!r} is not a .npy "
                    f"array); expected {expected}"
                )
            arrays[key] = array
        return arrays


def npz_headers(
    path: str | Path,
    label: str,
    keys: Sequence[str] | None = None,
    *,
    expected: str = NPZ_EXPECTED,
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``name -> (shape, dtype)`` of the arrays of an ``.npz``, from their headers only.

    The data is not read (read one array with ``read_npz(path, label, [name])``); errors are
    those of :func:`read_npz`.
    """
    current: list[str | None] = [None]
    with _npz_archive(path, label, expected, current) as archive:
        found: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        members = set(archive.zip.namelist())
        for key in _select(list(archive.files), keys, label, path):
            current[0] = key
            member = key if key in members else f"{key}.npy"
            with archive.zip.open(member) as stream:
                try:
                    version = np.lib.format.read_magic(stream)
                except ValueError:
                    raise XavinitError(
                        f"{label}: {Path(path)} is unreadable (member {key!r} is not a .npy "
                        f"array); expected {expected}"
                    ) from None
                reader = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = reader(stream)
            if dtype.hasobject:
                raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
            found[key] = (tuple(int(n) for n in shape), dtype)
        return found


class NpzReader:
    """An ``.npz`` held open to read its arrays one at a time, in any order (a file of
    thousands of arrays is opened once, not once per array); errors are :func:`read_npz`'s.

    Use as a context manager.
    """

    def __init__(self, path: str | Path, label: str, expected: str = NPZ_EXPECTED) -> None:
        self.path, self.label, self.expected = Path(path), label, expected
        self._current: list[str | None] = [None]
        self._opened = _npz_archive(path, label, expected, self._current)
        self._archive = self._opened.__enter__()

    def read(self, key: str) -> np.ndarray:
        """One array, read into memory with ``allow_pickle=False``."""
        self._current[0] = key
        try:
            array = self._archive[key]
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as error:
            # the archive's own handlers turn it into one XavinitError line, raised from here
            self._opened.__exit__(type(error), error, error.__traceback__)
            raise
        if not isinstance(array, np.ndarray):
            raise XavinitError(
                f"{self.label}: {self.path} is unreadable (member {key!r} is not a .npy "
                f"array); expected {self.expected}"
            )
        return array

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, StopIteration, XavinitError):  # closed already
            self._opened.__exit__(None, None, None)

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(key: str | None) -> str:
    """``"array 'W1': "`` while reading an array of the archive, else nothing."""
    return "" if key is None else f"array {key!r}: "
