"""The one latency histogram layout (microseconds, 1 us .. 60 s, 3 significant digits),
with a faster `record_value`; encoded histograms merge exactly into this layout."""

from __future__ import annotations

import math

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3


class Histogram(HdrHistogram):
    """HdrHistogram with a 3x faster `record_value` (the hot path of every request).

    The package finds the bucket via `len(bin(value))`; `int.bit_length` gives the same
    index without building a string. Counts are identical (tests/test_stats.py checks).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._bucket_base = self.unit_magnitude + self.sub_bucket_half_count_magnitude + 1

    def record_value(self, value: int, count: int = 1) -> bool:
        if value < 0:
            return False
        bucket = (value | self.sub_bucket_mask).bit_length() - self._bucket_base
        index = (((bucket + 1) << self.sub_bucket_half_count_magnitude)
                 + (value >> (bucket + self.unit_magnitude)) - self.sub_bucket_half_count)
        if index >= self.counts_len:
            return False
        self.counts[index] += count
        self.total_count += count
        if value < self.min_value:
            self.min_value = value
        if value > self.max_value:
            self.max_value = value
        return True


    def _recorded(self) -> list[tuple[int, int]]:
        """(median equivalent value, count) of every non-empty bucket, in one pass over the
        counts; hdrhistogram's own iterator costs ~100x more for mean and stdev."""
        counts = self.counts
        out = []
        for index in range(self.counts_len):
            count = counts[index]
            if count:
                out.append((self._hdr_median_equiv_value(self.get_value_from_index(index)),
                            count))
        return out

    def get_mean_value(self) -> float:
        if not self.total_count:
            return 0.0
        return sum(value * count for value, count in self._recorded()) / self.total_count

    def get_stddev(self) -> float:
        if not self.total_count:
            return 0.0
        recorded = self._recorded()
        mean = sum(value * count for value, count in recorded) / self.total_count
        spread = sum((value - mean) ** 2 * count for value, count in recorded)
        return math.sqrt(spread / self.total_count)


def new_histogram() -> Histogram:
    """Latency histogram in microseconds, 1 us .. 60 s, 3 significant digits."""
    return Histogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def decode_histogram(encoded: str) -> Histogram:
    """Decode into a histogram with our standard layout so `add` is a plain array add."""
    histogram = new_histogram()
    if encoded:
        histogram.decode_and_add(encoded)
    return histogram


def merge_encoded(encoded: list[str]) -> Histogram:
    """Exact merge of encoded histograms (runs, repeats, processes, workers)."""
    merged = new_histogram()
    for item in encoded:
        if item:
            merged.decode_and_add(item)
    return merged
