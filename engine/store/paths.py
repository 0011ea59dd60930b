"""Output paths: checked before any work starts, and OS errors while writing turned into one line.

Every command that writes a file checks its output paths first (check_output_file, check_output_dir):
a name that is empty, a directory where a file goes (or a file where a directory goes), a parent that
is a file, a directory that cannot be written (no permission, a read-only or pseudo file system such
as /proc) or a file name too long for its file system is refused with one line before a network is
trained.  The check creates and removes one empty probe file in the nearest existing directory,
because permission bits do not tell (root writes anywhere the file system lets it; /proc refuses
everyone).  Small text outputs (JSON, scripts) are written atomically by write_text; an OSError while
writing (a full disk above all) becomes a StoreError whose one line says what happened and what to
do (os_error_message).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import tempfile

from badminima.engine.store.schema import StoreError, short_error

# Suffixes the result-file writer adds to an output name (<path>.part.tmp is the longest).
WRITER_SUFFIX = ".part.tmp"
WRITER_NAMES = (".part", ".tmp", ".lock")     # the endings of the files a writer of X makes beside X


def disk_full(e: BaseException) -> bool:
    """Whether an OSError means the file system is full (or the user's quota is spent)."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def os_reason(e: OSError) -> str:
    """The reason an OSError gives, in one line (h5py's carry HDF5's whole error stack)."""
    lines = (e.strerror or "").strip().splitlines()
    return lines[0][:300] if lines else short_error(e)


def os_error_message(e: OSError, path: str, *, resumable: bool = False) -> str:
    """One line for an OSError met while writing `path`; a full disk or a file size limit says how to go on."""
    if disk_full(e):
        then = ("committed results are kept: free some space and rerun the same command to resume"
                if resumable else "free some space and rerun the same command")
        return f"disk full while writing {path}: {then}"
    if isinstance(e, OSError) and e.errno == errno.EFBIG:
        then = ("committed results are kept: raise the limit (ulimit -f) and rerun the same command to resume"
                if resumable else "raise the limit (ulimit -f) and rerun the same command")
        return f"file size limit reached while writing {path}: {then}"
    why = os_reason(e)
    where = f" ({e.filename})" if getattr(e, "filename", None) and os.fspath(e.filename) != path else ""
    return f"cannot write {path}: {why}{where}"


def _nearest_existing(path: str) -> str:
    """The path itself or its nearest ancestor that exists (the directories to be created lie below)."""
    p = path
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p


def _probe(directory: str, head: str) -> None:
    """Create and remove an empty file in `directory`; StoreError (one line) if that is impossible."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".badminima-probe-", dir=directory)
    except OSError as e:
        raise StoreError(f"{head}: {directory} is not writable ({e.strerror or e})") from None
    os.close(fd)
    try:
        os.remove(probe)
    except OSError:
        pass


def shell_quote(path) -> str:
    """A file name (or glob) as a command line printed for the user takes it: quoted, and ./ before a
    leading - so that it is not read as an option."""
    import shlex
    path = os.fspath(path)
    return shlex.quote("./" + path if path.startswith("-") else path)


def _shown(path: str) -> str:
    """A path as a message shows it: one of thousands of characters by its two ends."""
    return path if len(path) <= 200 else f"{path[:80]}...{path[-80:]}"


# Bytes an output folder's path leaves for what a command makes inside it: a staging folder and a
# file name of up to 255 bytes (a report's figures, a search's exports)
ROOM_INSIDE = 320


def _path_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096


def _check_name_length(directory: str, path: str, head: str, suffix: str) -> None:
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in os.path.relpath(path, directory).split(os.sep):
        if len(os.fsencode(part)) + len(suffix) > limit:
            raise StoreError(f"{head}: the name {part[:40]}... is longer than the file system allows "
                             f"({limit} bytes{', with ' + repr(suffix) if suffix else ''})")
    path_max = _path_max(directory)
    if len(os.fsencode(os.path.abspath(path))) + len(suffix) >= path_max:      # before any folder is made
        raise StoreError(f"{head}: the path is longer than the file system allows ({path_max} bytes"
                         f"{', with ' + repr(suffix) if suffix else ''})")


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path) -> bool:
    """Whether path is an existing file that starts with the HDF5 signature (a result file)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def _check_path_type(path, what: str) -> None:
    """StoreError unless `path` is a str or os.PathLike (a Python caller may pass anything)."""
    if path is None:
        raise StoreError(f"{what} is empty: give a path")
    if not isinstance(path, (str, os.PathLike)):
        raise StoreError(f"{what} must be a file path, got {type(path).__name__} {path!r}")
    if "\0" in str(os.fspath(path)):
        raise StoreError(f"{what} {os.fspath(path)!r} holds a NUL character, which no file name may")
    check_utf8_name(path, what)


def check_utf8_name(path, what: str) -> None:
    """StoreError for a file name that is not valid UTF-8 (bytes Python decoded as surrogates): result
    files, reports and scripts record their paths as text."""
    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(f"{what} {ascii(os.fsdecode(path))}: the name is not valid UTF-8, and result files, "
                         f"reports and scripts record paths as text; rename it") from None


def not_a_file(path: str) -> str | None:
    """Why an existing `path` is no regular file to write over (None if it is one, or is not there)."""
    if os.path.islink(path) and not os.path.exists(path):
        return f"it is a symbolic link to {os.readlink(path)!r}, which does not exist"
    if os.path.lexists(path) and not os.path.isfile(path):
        return "it exists and is not a regular file"
    return None


_FD_NAME = re.compile(r"/(?:proc/(?:self|(\d+))|dev)/fd/(\d+)")
_STD_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def own_descriptor(path) -> int | None:
    """The descriptor of this process that `path` names (/dev/stdout, /dev/fd/3, /proc/self/fd/1, or a
    link to one), else None.  Such a name opened anew would truncate, or a rename would replace, the
    file the descriptor writes to (`--json /dev/stdout > out.txt` lost the text before the JSON)."""
    p = os.path.abspath(os.fspath(path))
    for _ in range(40):
        if p in _STD_NAMES:
            return _STD_NAMES[p]
        m = _FD_NAME.fullmatch(p)
        if m and (m.group(1) is None or int(m.group(1)) == os.getpid()):
            return int(m.group(2))
        if not os.path.islink(p):
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return None


def is_stream(path) -> bool:
    """Whether an existing path is a character device or a pipe (/dev/null, a named pipe, a shell's
    process substitution `>(jq .)`): written to directly, there being no file to replace."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def check_output_file(path, *, what: str = "-o", suffix: str = "", stream: bool = False) -> str:
    """Refuse an output file path that cannot be written; returns it as a string.

    `what` names it in messages (the option, e.g. "--json"); `suffix` is the longest suffix the writer
    adds to the name for its own files (WRITER_SUFFIX for result files); `stream`: a text output that
    write_text may send to a device or pipe (is_stream) instead of a file.  Whether an existing file may
    be replaced is the caller's decision (result files: RunWriter; text outputs are replaced, except an
    HDF5 file: a --json, --figure or --script aimed at a result file would destroy it)."""
    _check_path_type(path, what)
    if not str(path).strip():
        raise StoreError(f"{what} is empty: give a file name")
    path = os.fspath(path)
    full = os.path.abspath(path)
    head = f"cannot write {what} {_shown(path)}"
    if os.path.isdir(full):
        raise StoreError(f"{head}: it is a directory; give a file name")
    if path.endswith(("/", os.sep)):
        raise StoreError(f"{head}: a trailing / names a directory; give a file name")
    fd = own_descriptor(path) if stream else None
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError:
            raise StoreError(f"{head}: it names descriptor {fd}, which is not open") from None
        return path
    if stream and is_stream(full):
        return path
    if not_a_file(full):
        raise StoreError(f"{head}: {not_a_file(full)}")
    if suffix and full.endswith(WRITER_NAMES):      # X.part is where a run writing X keeps its rows
        raise StoreError(f"{head}: a name ending in .part, .tmp or .lock is a result writer's own file "
                         f"(another run's work in progress); give another name")
    if not suffix and is_hdf5(full):
        raise StoreError(f"{head}: it is an HDF5 result file, which this output would replace; give another "
                         f"file name")
    top = _nearest_existing(os.path.dirname(full))
    if not os.path.isdir(top):
        raise StoreError(f"{head}: {top} is not a directory")
    _check_name_length(top, full, head, suffix)
    _probe(top, head)
    return path


def check_not_input(output, inputs, *, what: str = "-o", beside=("",)) -> None:
    """StoreError where `output`, or a file its writer keeps beside it (the suffixes `beside`), is one of
    the files the command reads: no option, --force included, replaces a command's own input."""
    for suffix in beside:
        out = os.fspath(output) + suffix
        for src in inputs:
            try:
                same = os.path.samefile(out, src)
            except (OSError, ValueError, TypeError):
                continue
            if same:
                raise StoreError(f"cannot write {what} {output}: it is {os.fspath(src)}, which this command "
                                 f"reads; give another file name")


def check_output_dir(path, *, what: str = "-o") -> str:
    """Refuse an output directory that cannot be made or written (it need not exist yet)."""
    _check_path_type(path, what)
    if not str(path).strip():
        raise StoreError(f"{what} is empty: give a directory")
    path = os.fspath(path)
    full = os.path.abspath(path)
    head = f"cannot use {what} {_shown(path)}"
    if os.path.lexists(full) and not os.path.isdir(full):
        raise StoreError(f"{head}: it exists and is not a directory")
    top = _nearest_existing(full)
    if not os.path.isdir(top):
        raise StoreError(f"{head}: {top} is not a directory")
    if top != full:
        _check_name_length(top, full, head, "")
    path_max = _path_max(top)
    if len(os.fsencode(full)) + ROOM_INSIDE >= path_max:
        raise StoreError(f"{head}: the path leaves no room for the files made inside it (the file system "
                         f"allows {path_max} bytes in all; keep it under {path_max - ROOM_INSIDE})")
    _probe(top, head)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_files(paths):
    """Yield a temporary file name beside each of `paths`; when the block ends normally each is renamed onto
    its path, in order, else all are removed: an interrupted or failed write changes none of the files, and
    the renames come only once every file is written.  A symbolic link at a path stays, and the file it
    points to is replaced.  OSError -> StoreError (one line, naming the path concerned)."""
    paths = [os.fspath(p) for p in paths]
    reals = [os.path.realpath(p) for p in paths]
    tmps: list = []
    current = paths[0] if paths else ""
    for p, real in zip(paths, reals):
        if os.path.isdir(real):
            raise StoreError(f"cannot write {p}: it is a directory")
        if is_hdf5(real):              # a text or figure output never replaces a result file
            raise StoreError(f"cannot write {p}: it is an HDF5 result file, which this output would replace")
    try:
        for p, real in zip(paths, reals):
            current = p
            folder = os.path.dirname(real)
            os.makedirs(folder, exist_ok=True)
            # the file's name cut to 100 bytes (whole characters), a random part, .tmp
            stem = os.fsencode(os.path.basename(real))[:100].decode("utf-8", "ignore") or "out"
            fd, tmp = tempfile.mkstemp(prefix=stem + ".", suffix=".tmp", dir=folder)
            os.close(fd)
            tmps.append(tmp)
        try:
            yield list(tmps)
        except OSError as e:            # name the output whose temporary file failed
            current = next((p for p, t in zip(paths, tmps) if e.filename and os.fspath(e.filename) == t), current)
            raise
        mask = 0o666 & ~_umask()
        for i, (p, real) in enumerate(zip(paths, reals)):
            current = p
            os.chmod(tmps[i], mask)
            os.replace(tmps[i], real)
            tmps[i] = None
    except OSError as e:
        raise StoreError(os_error_message(e, current)) from None
    finally:
        for tmp in tmps:
            if tmp is not None:
                try:
                    os.remove(tmp)
                except OSError:
                    pass


@contextlib.contextmanager
def atomic_file(path):
    """``atomic_files`` for one file: yields its temporary name."""
    with atomic_files([path]) as (tmp,):
        yield tmp


def write_text(path, text: str) -> str:
    """Write a text file atomically (``atomic_file``), or straight to a descriptor of this process
    (own_descriptor: after what its Python stream holds, so the order is kept) or to a device or pipe
    (is_stream)."""
    # a file name that is not UTF-8 (bytes Python holds as surrogates) is written escaped, \xff
    fd = own_descriptor(path)
    if fd is not None:
        for s in (sys.stdout, sys.stderr):
            try:
                if s.fileno() == fd:
                    s.flush()
            except (AttributeError, OSError, ValueError):
                pass
        data = text.encode("utf-8", errors="backslashreplace")
        while data:
            data = data[os.write(fd, data):]
        return os.fspath(path)
    if is_stream(path):
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        return os.fspath(path)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text)
    return os.fspath(path)
