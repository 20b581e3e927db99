"""GitHub Actions job summaries: when `GITHUB_STEP_SUMMARY` names a file, `run` and
`compare` append their markdown to it (https://docs.github.com/actions: "Adding a job
summary"). Appended, never truncated: other steps write to the same file. A file that
cannot be written is a warning, never a lost result or a changed exit code."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV = "GITHUB_STEP_SUMMARY"

__all__ = ["ENV", "append_step_summary"]


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None
                        ) -> str | None:
    """Append `markdown` (then a blank line) to the summary file, if one is named. Returns
    a warning to print when the file could not be written, else None."""
    path = (os.environ if environ is None else environ).get(ENV, "")
    if not path:
        return None
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        return (f"{ENV}={path}: cannot append the summary ({exc.strerror or exc}); "
                "the other outputs and the exit code are unaffected")
    return None
