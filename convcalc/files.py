"""Files written whole: a temporary file beside the target, then os.replace, so that a
reader never sees half a file and an interrupted write leaves the old one in place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_whole(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call write(stream) on a temporary file beside `path`, then rename it over `path`.
    The file gets the usual permissions (mkstemp's 0600 relaxed to 0666 & ~umask)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        usual_permissions(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def usual_permissions(path) -> None:
    """The permissions a new file gets (0666 less the umask): mkstemp's are 0600."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def refuse_target(path: Path, option: str, reads: tuple = ()) -> str | None:
    """Why `path` cannot be the file that `option` writes, or None when it can: a folder, a
    folder that does not exist, or a file the command reads (the spec, a model, weights, an
    input: writing it would lose it). `reads` are paths the command reads; a folder among
    them stands for every file in it."""
    path = Path(path)
    if path.is_dir():
        return f"{option} {path} is a folder; name the file to write, e.g. {path / 'out'}"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"{option} {path}: the folder {parent} does not exist"
    target = path.resolve()
    for read in map(Path, reads):
        try:
            same = read.resolve() == target or (read.is_dir() and read.resolve() in target.parents
                                                and path.exists())
        except (OSError, RuntimeError):
            continue
        if same:
            return f"{option} {path} is a file this command reads ({read}); name another file"
    return None
