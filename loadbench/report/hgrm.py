"""HdrHistogram percentile distribution (.hgrm) per run, in milliseconds, for HDR plotters.

Byte-for-byte the layout of the reference (Java / C) `outputPercentileDistribution`.
The Python package's own `output_percentile_distribution` differs from it in three
ways, so the rows are formatted here: its percentile ladder skips the floor() of the
reference (levels 10%, 19%, 27.1% ... instead of 10%, 20% ... 50%, 55% ...), it prints
the standard deviation unscaled (microseconds beside a mean in milliseconds), and it
writes "TotalCount" as a float where parsers of wrk2/HdrHistogram output expect
"Total count" as an integer.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.iterators import PercentileIterator

from loadbench.errors import BadInput
from loadbench.result import Result, RunResult
from loadbench.stats import decode_histogram

UNIT_SCALING = 1000.0  # histogram microseconds -> milliseconds
TICKS_PER_HALF_DISTANCE = 5


class ReferencePercentileIterator(PercentileIterator):
    """Percentile levels as the reference implementations step them: a fixed number of
    ticks per whole halving of the distance to 100%."""

    def increment_iteration_level(self) -> None:
        self.percentile_to_iterate_from = self.percentile_to_iterate_to
        gap = 100.0 - self.percentile_to_iterate_to
        if gap > 0:
            halvings = int(math.log(100.0 / gap) / math.log(2))
            ticks = self.percentile_ticks_per_half_distance * 2 ** (halvings + 1)
            self.percentile_to_iterate_to += 100.0 / ticks


def render(result: Result) -> str:
    """Every run's block, one after the other: a listing to read. An HDR plotter reads one
    distribution per file, so `report` writes `render_run` per run (see `outputs`)."""
    if not result.runs:
        return "# no runs\n"
    return "\n".join(render_run(run) for run in result.runs)


def render_run(run: RunResult) -> str:
    """One run's distribution: one .hgrm file, one series in a plotter."""
    histogram = decode_histogram(run.histogram) if run.histogram else None
    if histogram is None or histogram.get_total_count() == 0:
        return (f"# run: {run.name}\n# no latency histogram recorded "
                "(no successful requests)\n")
    return f"# run: {run.name}\n{distribution(histogram)}"


def outputs(result: Result, output: Path | None, run: str | None) -> dict[Path | None, str]:
    """What `report --format hgrm` writes: {path: text}, None meaning stdout. One run per
    file: `--run NAME` picks one; with several runs `-o out.hgrm` becomes
    `out.<run>.hgrm` per run (run names made file-safe), and stdout needs --run."""
    names = [r.name for r in result.runs]
    if run is not None:
        chosen = result.run(run)
        if chosen is None:
            raise BadInput(f"--run {run!r}: no such run; runs: {', '.join(names) or 'none'}")
        return {output: render_run(chosen)}
    if len(result.runs) <= 1:
        return {output: render(result)}
    if output is None:
        raise BadInput(f"{len(names)} runs ({', '.join(names)}) and a .hgrm file holds one "
                       "distribution: give --run NAME, or -o FILE.hgrm for one file per run")
    if str(output) == "-":
        raise BadInput("-o -: several runs need several files; give --run NAME")
    stem = output.name[:-len(output.suffix)] if output.suffix else output.name
    files: dict[Path | None, str] = {}
    for item in result.runs:
        path = output.with_name(f"{stem}.{_file_safe(item.name)}{output.suffix or '.hgrm'}")
        if path in files:
            raise BadInput(f"runs {item.name!r} and another map to the same file {path}; "
                           "give --run NAME")
        files[path] = render_run(item)
    return files


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100] or "_"


def distribution(histogram: HdrHistogram, scaling: float = UNIT_SCALING,
                 ticks_per_half_distance: int = TICKS_PER_HALF_DISTANCE) -> str:
    """The percentile table and footer of one non-empty histogram."""
    digits = histogram.significant_figures
    lines = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}\n\n"]
    for step in ReferencePercentileIterator(histogram, ticks_per_half_distance):
        value = step.value_iterated_to / scaling
        level = step.percentile_level_iterated_to
        row = f"{value:12.{digits}f} {level / 100:2.12f} {step.total_count_to_this_value:10d}"
        if level != 100:
            row += f" {1 / (1 - level / 100):14.2f}"
        lines.append(row + "\n")
    mean = histogram.get_mean_value() / scaling
    stdev = histogram.get_stddev() / scaling
    maximum = histogram.get_max_value() / scaling
    lines += [
        f"#[Mean    = {mean:12.{digits}f}, StdDeviation   = {stdev:12.{digits}f}]\n",
        f"#[Max     = {maximum:12.{digits}f}, Total count    = "
        f"{histogram.get_total_count():12d}]\n",
        f"#[Buckets = {histogram.bucket_count:12d}, SubBuckets     = "
        f"{histogram.sub_bucket_count:12d}]\n",
    ]
    return "".join(lines)
