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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
