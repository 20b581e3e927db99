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
from loadbench.metrics import Record, find_record, records, shows_records
from loadbench.record_names import file_slug, split_address
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


def render_record(run: RunResult, record: Record) -> str:
    """One endpoint's latency or one flow's iteration-duration distribution."""
    part = run.endpoints.get(record.name) if record.kind == "endpoint" else \
        run.flows.get(record.name)
    encoded = part.histogram if part is not None else ""
    histogram = decode_histogram(encoded) if encoded else None
    head = f"# run: {run.name}\n# {record.kind}: {record.name}" + (
        " (iteration duration)\n" if record.kind == "flow" else "\n")
    if histogram is None or histogram.get_total_count() == 0:
        what = "no completed iterations" if record.kind == "flow" else "no successful requests"
        return f"{head}# no latency histogram recorded ({what})\n"
    return head + distribution(histogram)


def outputs(result: Result, output: Path | None, run: str | None) -> dict[Path | None, str]:
    """What `report --format hgrm` writes: {path: text}, None meaning stdout. One run per
    file: `--run NAME` picks one (`--run 'NAME[ENDPOINT]'` one endpoint or flow); with
    several runs `-o out.hgrm` becomes `out.<run>.hgrm` per run (run names made
    file-safe), and stdout needs --run. A run broken down by endpoint and flow also gets
    one file per endpoint and flow beside its own: `out.<run>.<name slug>.hgrm`."""
    names = [r.name for r in result.runs]
    if run is not None:
        run_name, part = split_address(run)
        chosen = result.run(run_name)
        if chosen is None:
            raise BadInput(f"--run {run!r}: no such run; runs: {', '.join(names) or 'none'}")
        if part is not None:
            record = find_record(chosen, part)
            if record is None:
                known = ", ".join(r.name for r in records(chosen)) or "none"
                raise BadInput(f"--run {run!r}: run '{run_name}' has no endpoint or flow "
                               f"{part!r}; endpoints and flows: {known}")
            return {output: render_record(chosen, record)}
        return {output: render_run(chosen), **_record_files(chosen, output, {output})}
    if len(result.runs) <= 1:
        files = {output: render(result)}
        return files if not result.runs else {**files, **_record_files(result.runs[0],
                                                                       output, {output})}
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
        files.update(_record_files(item, path, set(files)))
    return files


def _record_files(run: RunResult, path: Path | None, taken: set) -> dict[Path | None, str]:
    """`<run file stem>.<slug>.hgrm` per endpoint and flow, beside the run's own file."""
    if path is None or str(path) == "-" or not shows_records(run):
        return {}
    stem = path.name[:-len(path.suffix)] if path.suffix else path.name
    files: dict[Path | None, str] = {}
    for record in records(run):
        target = path.with_name(f"{stem}.{file_slug(record.name)}{path.suffix or '.hgrm'}")
        if target in taken or target in files:
            raise BadInput(f"{record.kind} {record.name!r} of run {run.name!r} and another "
                           f"map to the same file {target}; give --run NAME")
        files[target] = render_record(run, record)
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
