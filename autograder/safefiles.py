"""Read and copy files that someone else controls: regular files only, never through a link, size-capped.

Submissions and everything a grading worker leaves behind are hostile data. A symbolic link could point
at an instructor's file, a named pipe would block a reader forever, ``/dev/zero`` never ends. Every read
of such a file goes through :func:`read_regular`: the last path component is opened with ``O_NOFOLLOW``
and ``O_NONBLOCK``, the open file must be a regular file, and at most ``max_bytes`` are read.
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
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if os.path.islink(path):
            raise UnsafeFile(f"{os.path.basename(path)!r} is a symbolic link") from error
        raise
    handle = os.fdopen(descriptor, "rb")
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        handle.close()
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{os.path.basename(path)!r} is {kind(info.st_mode)}, not a regular file")
        raise TooLarge(f"{os.path.basename(path)!r} is larger than {max_bytes:,} bytes")
    return handle


def read_regular(path, max_bytes):
    """The bytes of regular file ``path``; :class:`UnsafeFile` or :class:`TooLarge` otherwise."""
    with open_regular(path, max_bytes) as handle:
        data = handle.read(max_bytes + 1)
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
