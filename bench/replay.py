"""Replay throughput: events per second through decode + engine + report, on one core.

    python bench/replay.py [--events 1000000] [--contracts examples/contracts.yaml] [--repeat 3] [--jobs 2]
                           [--python-router] [--python-engine]

Generates the events once (not timed), then times, side by side in one run: decoding only, the full
replay (decode + engine + report) in one process, and with --jobs N the same replay split across N processes
by item (`slamon.jobs`), checking that its report equals the one process's. With --python-engine, also the replay
with the Python engine (the reference of native/engine; the compiled loop runs otherwise when built), checking the
same report. Prints JSON: medians over --repeat
rounds of wall and CPU time (the reading process plus its jobs: `RUSAGE_CHILDREN`), the speedup per round, and
the load average before and after (the machine may be shared: CPU time is what load does not distort).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import time

from bench_events import make_events

from monitor import compiled_replay
from monitor.contracts import load_contracts
from monitor.events import decode_event
from monitor.gc_tuning import tune_gc
from monitor.replay import replay_lines
from slamon import jobs as jobs_module
from slamon.jobs import replay as replay_in_jobs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--contracts", default="examples/contracts.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0, help="also time the replay on this many processes")
    ap.add_argument("--python-router", action="store_true",
                    help="with --jobs: also time the jobs with the reader's Python router (the reference)")
    ap.add_argument("--python-engine", action="store_true",
                    help="also time the one-process replay with the Python engine (the reference)")
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    lines = make_events(contracts, args.events)
    # Both replays read the lines from one buffer, as the command line reads a file: line objects made while
    # reading. (A list of line objects made before the jobs fork is shared copy-on-write with them, and the
    # reading process would pay a page copy per line it touches: ~5 µs each, a cost the command line never has.)
    blob = b"\n".join(lines) + b"\n"
    del lines
    tune_gc()
    decode_s, replay_s, jobs_s, replay_cpu, jobs_cpu, reader_cpu, each_cpu = [], [], [], [], [], [], []
    py_s, py_reader_cpu, ref_s, ref_cpu = [], [], [], []
    compiled = jobs_module.COMPILED_ROUTER
    engine_compiled = compiled_replay.IN_USE
    result = None
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        t = time.perf_counter()
        for line in io.BytesIO(blob):
            decode_event(line, contracts.clients)
        decode_s.append(time.perf_counter() - t)
        t, c = time.perf_counter(), time.process_time()
        result = replay_lines(io.BytesIO(blob), contracts)
        replay_s.append(time.perf_counter() - t)
        replay_cpu.append(time.process_time() - c)
        if args.python_engine:
            compiled_replay.IN_USE = False
            t, c = time.perf_counter(), time.process_time()
            reference = replay_lines(io.BytesIO(blob), contracts)
            ref_s.append(time.perf_counter() - t)
            ref_cpu.append(time.process_time() - c)
            compiled_replay.IN_USE = engine_compiled
            assert [r.as_dict() for r in reference.records] == [r.as_dict() for r in result.records]
            assert reference.pipeline() == result.pipeline()
        if args.jobs > 1:
            t, c, kids = time.perf_counter(), time.process_time(), _children_cpu()
            split = replay_in_jobs(io.BytesIO(blob), contracts, jobs=args.jobs)
            jobs_s.append(time.perf_counter() - t)
            jobs_cpu.append(time.process_time() - c + _children_cpu() - kids)
            reader_cpu.append(time.process_time() - c)
            each_cpu.append([round(x, 2) for x in jobs_module.last_jobs_cpu_s])
            assert [r.as_dict() for r in split.records] == [r.as_dict() for r in result.records]
            assert split.pipeline() == result.pipeline()
        if args.jobs > 1 and args.python_router:
            jobs_module.COMPILED_ROUTER = False
            t, c = time.perf_counter(), time.process_time()
            split = replay_in_jobs(io.BytesIO(blob), contracts, jobs=args.jobs)
            py_s.append(time.perf_counter() - t)
            py_reader_cpu.append(time.process_time() - c)
            jobs_module.COMPILED_ROUTER = compiled
            assert [r.as_dict() for r in split.records] == [r.as_dict() for r in result.records]
    n = result.lines
    d, r = statistics.median(decode_s), statistics.median(replay_s)
    print(json.dumps({
        "events": n, "repeat": args.repeat,
        "decode_only_events_per_s": round(n / d), "replay_events_per_s": round(n / r),
        "replay_over_decode_time": round(r / d, 2),
        "replay_wall_s": [round(x, 2) for x in replay_s], "replay_cpu_s": [round(x, 2) for x in replay_cpu],
        "replay_engine": "compiled" if engine_compiled else "python",
        "replay_events_per_cpu_s": round(n / statistics.median(replay_cpu)),
        **({"python_engine_wall_s": [round(x, 2) for x in ref_s],
            "python_engine_cpu_s": [round(x, 2) for x in ref_cpu],
            "python_engine_events_per_cpu_s": round(n / statistics.median(ref_cpu)),
            "compiled_over_python_cpu_per_round": [round(a / b, 2) for a, b in zip(ref_cpu, replay_cpu, strict=True)],
            "compiled_over_python_cpu_median_of_rounds": round(statistics.median(
                a / b for a, b in zip(ref_cpu, replay_cpu, strict=True)), 2)} if ref_s else {}),
        **({f"replay_jobs_{args.jobs}_events_per_s": round(n / statistics.median(jobs_s)),
            f"jobs_{args.jobs}_wall_s": [round(x, 2) for x in jobs_s],
            f"jobs_{args.jobs}_cpu_s_all_processes": [round(x, 2) for x in jobs_cpu],
            f"jobs_{args.jobs}_cpu_s_reading_process": [round(x, 2) for x in reader_cpu],
            f"jobs_{args.jobs}_cpu_s_each_job": each_cpu,
            f"jobs_{args.jobs}_speedup_per_round": [round(a / b, 2) for a, b in zip(replay_s, jobs_s, strict=True)],
            f"jobs_{args.jobs}_speedup_median_of_rounds": round(statistics.median(
                a / b for a, b in zip(replay_s, jobs_s, strict=True)), 2),
            f"jobs_{args.jobs}_cpu_over_one_process_cpu": round(statistics.median(jobs_cpu)
                                                                 / statistics.median(replay_cpu), 3),
            f"jobs_{args.jobs}_router": "compiled" if compiled else "python"}
           if jobs_s else {}),
        **({f"jobs_{args.jobs}_python_router_wall_s": [round(x, 2) for x in py_s],
            f"jobs_{args.jobs}_python_router_cpu_s_reading_process": [round(x, 2) for x in py_reader_cpu],
            f"jobs_{args.jobs}_python_router_speedup_per_round": [round(a / b, 2)
                                                                  for a, b in zip(replay_s, py_s, strict=True)]}
           if py_s else {}),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "records": len(result.records), "accepted": result.accepted, "duplicates": result.duplicates,
        "rejected": dict(result.rejected),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
    }, indent=2))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
