"""Where an internal error's traceback goes: a log file the one-line message names."""

from __future__ import annotations

import sys
from pathlib import Path

from loadbench import __version__


def write_crash_log() -> Path | None:
    """Save the current exception's traceback under $XDG_CACHE_HOME/loadbench (default
    ~/.cache/loadbench), else the temp directory; None if neither is writable."""
    import os
    import tempfile
    import time
    import traceback

    text = (f"loadbench {__version__}\nargv: {sys.argv!r}\n\n" + traceback.format_exc())
    name = f"crash-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loadbench"
    for folder in (cache, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
