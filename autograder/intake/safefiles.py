"""Read and copy files that someone else controls: regular files only, never through a link, size-capped.

Submissions and everything a grading worker leaves behind are hostile data. A symbolic link could point
at an instructor's file, a named pipe would block a reader forever, ``/dev/zero`` never ends. Every read
of such a file goes through :func:`read_regular`: the path is looked at first (``lstat``) and anything but a
regular file is refused unopened (a socket cannot even be opened, a device must never be); the last path
component is then opened with ``O_NOFOLLOW`` and ``O_NONBLOCK``, the open file must still be a regular file,
and at most ``max_bytes`` are read. Whatever goes wrong on the way (a file that vanished, an unreadable
one, an I/O error) is an :class:`UnsafeFile`, never a bare ``OSError``: callers refuse the one submission.
:func:`special_files` finds links, pipes, sockets and devices anywhere under a folder without opening any.
"""

import os
import stat


class UnsafeFile(ValueError):
    """A path that is a link, a directory, a device, a pipe or a socket where a regular file was expected."""


class TooLarge(ValueError):
    """A file or archive beyond its size limit."""


def kind(mode):
    """A word for the type of file ``mode`` describes (for messages)."""
    for test, word in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return word
    return "an unknown kind of file"


def open_regular(path, max_bytes):
    """Regular file ``path`` opened for reading (binary); :class:`UnsafeFile` or :class:`TooLarge` otherwise."""
    name = os.path.basename(path)
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        raise UnsafeFile(f"{name!r} cannot be read ({error.strerror or error})") from error
    if not stat.S_ISREG(mode):  # refused before any open: a socket raises ENXIO, a device must not be opened
        raise UnsafeFile(f"{name!r} is {kind(mode)}, not a regular file")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:  # replaced since the lstat (by a link, a socket…), or unreadable
        if os.path.islink(path):
            raise UnsafeFile(f"{name!r} is a symbolic link") from error
        raise UnsafeFile(f"{name!r} cannot be opened ({error.strerror or error})") from error
    handle = os.fdopen(descriptor, "rb")
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        handle.close()
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{name!r} is {kind(info.st_mode)}, not a regular file")
        raise TooLarge(f"{name!r} is larger than {max_bytes:,} bytes")
    return handle


def read_regular(path, max_bytes):
    """The bytes of regular file ``path``; :class:`UnsafeFile` or :class:`TooLarge` otherwise."""
    with open_regular(path, max_bytes) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as error:
            raise UnsafeFile(f"{os.path.basename(path)!r} cannot be read ({error.strerror or error})") from error
    if len(data) > max_bytes:  # it grew since it was opened
        raise TooLarge(f"{os.path.basename(path)!r} is larger than {max_bytes:,} bytes")
    return data


def write_new(path, data):
    """Write ``data`` to ``path``, replacing whatever entry is there (a link is replaced, never followed)."""
    if os.path.lexists(path) and not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def entries(folder):
    """``[(name, lstat mode)]`` of ``folder``'s entries, sorted, links not followed."""
    with os.scandir(folder) as scan:
        return sorted((entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in scan)


def is_real_folder(path):
    """True for a folder that is not a symbolic link."""
    return stat.S_ISDIR(os.lstat(path).st_mode)


MAX_WALK_DEPTH = 16
MAX_WALK_ENTRIES = 100_000


def special_files(path, mode=None):
    """``"<relative path> is <kind>"`` for the first entry under ``path`` (``path`` itself included) that is
    neither a regular file nor a folder: a link, a pipe, a socket, a device; None if there is none.

    Nothing is opened or followed (``lstat`` and ``scandir`` only). A tree deeper than
    :data:`MAX_WALK_DEPTH` or larger than :data:`MAX_WALK_ENTRIES`, or a folder that cannot be listed,
    is reported the same way: the caller refuses what it cannot look through."""
    mode = os.lstat(path).st_mode if mode is None else mode
    if not stat.S_ISDIR(mode):
        return None if stat.S_ISREG(mode) else f"{os.path.basename(path)!r} is {kind(mode)}"
    pending, seen = [(path, "", 0)], 0
    while pending:
        folder, relative, depth = pending.pop()
        try:
            listing = entries(folder)
        except OSError as error:
            return f"{relative or os.path.basename(folder)!r} cannot be listed ({error.strerror or error})"
        for name, child_mode in listing:
            seen += 1
            child = f"{relative}/{name}" if relative else name
            if seen > MAX_WALK_ENTRIES:
                return f"it holds more than {MAX_WALK_ENTRIES:,} files"
            if stat.S_ISDIR(child_mode):
                if depth + 1 >= MAX_WALK_DEPTH:
                    return f"{child!r} is nested deeper than {MAX_WALK_DEPTH} folders"
                pending.append((os.path.join(folder, name), child, depth + 1))
            elif not stat.S_ISREG(child_mode):
                return f"{child!r} is {kind(child_mode)}"
    return None
