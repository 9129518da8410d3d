"""What metrics cost a synchronous request: its EMF document (request counts by route group, latency and
the gateway's share, the provider call), as AWS runs it (metrics on), against metrics off (the local
stack), side by side in one run. stdout goes to /dev/null meanwhile, as CloudWatch's log capture costs
the function nothing measurable here; on Lambda each document is one more log line (about 1 KB).

    .venv/bin/python benchmarks/metrics_overhead.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time


def one_request() -> None:
    from switchyard import metrics

    with metrics.measured_request(metrics.RouteGroup.SYNC_INFERENCE):
        with metrics.provider_call(metrics.CallPath.SYNC) as call:
            call.answered(200)
        metrics.record_request(200, 12.0)


def microseconds_per_request(requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        one_request()
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Switchyard/benchmark")
    figures: dict[str, list[float]] = {"on": [], "off": []}
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(args.rounds):  # interleaved, so both see the same machine
            for mode in ("on", "off"):
                os.environ["POWERTOOLS_METRICS_DISABLED"] = "false" if mode == "on" else "true"
                microseconds_per_request(args.requests // 10)  # warm
                figures[mode].append(microseconds_per_request(args.requests))
    on, off = statistics.median(figures["on"]), statistics.median(figures["off"])
    print(f"metrics per sync request, median of {args.rounds} rounds of {args.requests}:")
    print(f"  metrics on  (AWS)   {on:7.1f} us   (best {min(figures['on']):.1f})")
    print(f"  metrics off (local) {off:7.1f} us   (best {min(figures['off']):.1f})")
    print(
        f"  added by the EMF document: {on - off:.1f} us per request ({on / off:.1f}x the bookkeeping alone)"
    )


if __name__ == "__main__":
    sys.exit(main())
