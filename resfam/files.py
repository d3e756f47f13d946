"""Output files that are never half-written: what resfam's tools write (reports, summaries, run
checkpoints, plots) appears whole or not at all.

- :func:`check_output`: a path refused before any work (a directory, a FIFO or a device, a
  folder that cannot be written or a full disk, found by a real write), never after a sweep;
- :func:`replace_atomically`: write into a temporary file in the same folder, flush it to disk,
  then rename it over the target: a kill or a full disk leaves the old file or the new one;
- :class:`AppendLog`: a JSON-lines file grown one complete line at a time, held by one writer
  (an advisory lock), whose torn last line (a kill mid-write) is cut before it is appended to.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import Callable, Iterator

from .errors import ArgumentError, ResfamError, short_repr

try:  # POSIX advisory locks; elsewhere a second writer is not detected
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def check_output(path: str, flag: str) -> None:
    """Refuse ``path`` as an output before any work: a directory, an existing file that is not
    a regular file (a FIFO would block for ever, ``/dev/full`` would fail at the end), or a
    folder where a real write fails (permissions, a full disk)."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise ResfamError(f"{flag} {path!r}: not a file name")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise ResfamError(f"{flag} {path}: cannot use it ({e.strerror})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise ResfamError(f"{flag} {path}: is a directory; give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise ResfamError(f"{flag} {path}: is not a regular file (a FIFO, socket or device); give "
                          "a file name")
    folder = _folder(path)
    if not os.path.isdir(folder):
        raise ResfamError(f"{flag} {path}: cannot write there (the folder {folder} does not exist)")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".resfam-probe-") as f:
            f.write(b"\0" * 4096)  # a real write: a full disk fails here, not after the sweep
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise ResfamError(f"{flag} {path}: cannot write there ({e.strerror})") from None


def make_folder(out, *sub: str) -> str:
    """``out`` (and ``out/sub...``) as a folder for a study's files, made if missing, checked
    before any work: a path, not a file, creatable. Returns ``out`` as a string; the files
    written in it are the caller's to check (:func:`check_output`)."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ArgumentError(f"out must be a folder path, got {short_repr(out)}")
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ResfamError(f"--out {out}: is a file, not a folder; give a folder for the study")
    target = os.path.join(out, *sub)
    try:
        os.makedirs(target, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ResfamError(f"--out {out}: {target} is a file, not a folder; move it, or give "
                          "another --out") from None
    except OSError as e:
        raise ResfamError(f"--out {out}: cannot make the study's folders ({e.strerror})") from None
    return out


def _mode_for(path: str) -> int:
    """The permission bits ``path`` has, or a newly created file would have."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def replace_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to make the new file at a temporary path beside ``path``, flush it to
    disk and rename it over ``path``. Whatever stops it (an error, a full disk, Ctrl-C), ``path``
    keeps its old content and the temporary file is removed. The new file gets the old one's
    permissions, or a new file's (0666 less the umask: mkstemp's 0600 would hide a report from
    the rest of a team, or from the web server that serves it)."""
    folder = _folder(path)
    base = os.path.basename(path)
    root, suffix = os.path.splitext(base)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{root}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise ResfamError(f"{path}: cannot write it ({e.strerror or e}); its old content is "
                              "kept") from None
        raise


def write_text_atomically(path: str, text: str) -> None:
    """``text`` as the whole new content of ``path`` (:func:`replace_atomically`)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    replace_atomically(path, write)


class AppendLog:
    """A JSON-lines file written a complete line at a time by one writer.

    ``resume=False``: the file's old content stays until the first lines are written, which
    replace it atomically; after that, lines are appended and flushed to disk. ``resume=True``:
    lines are appended after the existing ones; a torn last line (no newline: a writer killed
    mid-line) is cut first, so the next line is not glued onto it. A second writer of the same
    file is refused while the first holds it (a lock on a ``.<name>.lock`` file beside it).
    """

    def __init__(self, path: str, resume: bool):
        self.path, self.started = path, resume
        self._lock = _hold_lock(path)
        if resume and os.path.exists(path):
            _cut_torn_tail(path)

    def write_lines(self, lines: list[str]) -> None:
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        if not self.started:
            write_text_atomically(self.path, text)
            self.started = True
            return
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise ResfamError(f"{self.path}: cannot append to it ({e.strerror})") from None

    def close(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            with contextlib.suppress(OSError):
                os.remove(lock.name)
            lock.close()

    def __enter__(self) -> "AppendLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _hold_lock(path: str):
    if fcntl is None:  # pragma: no cover
        return None
    lock_path = os.path.join(_folder(path), f".{os.path.basename(path)}.lock")
    lock = open(lock_path, "a")  # noqa: SIM115 - held until close()
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise ResfamError(f"{path}: another process is writing it (lock {lock_path}); wait for it "
                          "to finish, or write to another file") from None
    return lock


def _cut_torn_tail(path: str) -> None:
    """Truncate ``path`` after its last newline (nothing when it ends with one)."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        end = 0
        for start in _blocks_backwards(size):
            f.seek(start)
            chunk = f.read(min(65536, size - start))
            i = chunk.rfind(b"\n")
            if i >= 0:
                end = start + i + 1
                break
        f.truncate(end)


def _blocks_backwards(size: int) -> Iterator[int]:
    start = size
    while start > 0:
        start = max(0, start - 65536)
        yield start
