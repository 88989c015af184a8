"""What recording one event costs the thread that records it, with and without rotation and gzip.

``python bench/eventlog.py [RECORDS]``: records a decision-sized payload (about 370 bytes a line)
as fast as one thread can, into ``adapters.runlog.JsonlFileSink``, once without rotation and once
rotating every 8 MiB (so a segment is being gzipped on the background thread most of the time),
and prints the caller's latency per record. The writer thread and the compressor share the GIL
with the caller; production rates are far below this saturating loop.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from adapters.runlog import JsonlFileSink, read_event_lines

PAYLOAD = {
    "reasons": {"fair_source": "microprice", "inventory_qty": 123_456, "skew_px": -3, "half_spread_px": 100},
    "bids": [[4900, 10_000_000], [4800, 20_000_000], [4700, 40_000_000]],
    "asks": [[5100, 10_000_000], [5200, 20_000_000], [5300, 40_000_000]],
}


def run(rotate_bytes: int, n: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        sink = JsonlFileSink(Path(tmp) / "events.jsonl", rotate_bytes=rotate_bytes)
        lat = []
        t0 = time.perf_counter()
        for i in range(n):
            a = time.perf_counter_ns()
            sink.record("decision", 1_700_000_000_000_000_000 + i, "0x" + "ab" * 32, PAYLOAD)
            lat.append(time.perf_counter_ns() - a)
        t1 = time.perf_counter()
        sink.close()
        w = sink.writer
        assert sum(1 for _ in read_event_lines(Path(tmp))) == n
    lat.sort()

    def us(q: float) -> str:
        return f"{lat[int(q * len(lat)) - 1] / 1000:.1f}"

    rot = "no rotation" if rotate_bytes >= 1 << 40 else f"rotate {rotate_bytes >> 20} MiB"
    return (
        f"{rot}: {n:,} records ({w.bytes_written / 2**20:.0f} MiB) in {t1 - t0:.2f} s, "
        f"{w.segments_compressed} segments gzipped; record() p50 {us(0.5)} us, p99 {us(0.99)} us, "
        f"p99.9 {us(0.999)} us, max {lat[-1] / 1000:.0f} us"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "records", nargs="?", type=int, default=300_000, help="records per run (one run each way) [300000]"
    )
    records = parser.parse_args().records
    print(run(1 << 40, records))
    print(run(8 << 20, records))
