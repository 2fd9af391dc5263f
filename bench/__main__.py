"""``python -m bench`` (``make bench``): run the benchmarks, print a table, write ``bench/results.json``.

Four parts, all run by default: ``lab`` (:mod:`bench.lab`: lab start, ``$connect``/s, held connections,
fan-out), ``evidence`` (:mod:`bench.evidence`: log parsing, DynamoDB pages, peak memory) and ``report``
(:mod:`bench.report`: a warm ``kit report`` of the diagnosis notebook against papermill's floor) and
``insights`` (:mod:`bench.insights`: time to diagnosis of a big window, Logs Insights against downloading).
Name parts as arguments (``python -m bench evidence``, under a minute and a half) to run only those; the
results file then holds only their figures, and its ``settings.parts`` says which ran.

``python -m bench peers`` (``make bench-peers``, which first installs serverless-offline into
``bench/peers``) runs :mod:`bench.peer_bench` alone: the lab beside serverless-offline. It is never part of
the default run, and writes only the ``peers`` section of the results file; the other parts keep that section
when they write theirs.

Sizes come from the environment (see :mod:`bench.settings`; ``KIT_BENCH_SCALE=0.1`` for a quick run) and
the results file goes to ``$KIT_BENCH_OUTPUT`` when set. Progress goes to stderr, the table to stdout. The
exit status is 1 when a figure could not be measured at all, 0 otherwise: an unmet target is a finding to
read in the table, not a failure of the bench.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from bench.evidence import run_evidence_benchmarks
from bench.figures import Figure, render_table, results_document
from bench.insights import run_insights_benchmark
from bench.lab import run_lab_benchmarks
from bench.machine import describe_machine
from bench.peer_bench import run_peers
from bench.report import run_report_benchmarks
from bench.results_file import carried_over, read_results, write_results
from bench.settings import (
    DEFAULT_OUTPUT,
    OUTPUT_ENV,
    REPORT_NOTEBOOKS_ENV,
    SCALE_ENV,
    SIZES,
    BenchSettings,
    Size,
)
from bench.versus import CLIENTS_ENV, PEER_SIZES
from kit.errors import ConfigurationError

PARTS = ("lab", "evidence", "report", "insights")
PEERS = "peers"  # the lab beside serverless-offline: run alone, never by default (it needs npm packages)


def run_part(part: str, settings: BenchSettings) -> tuple[list[Figure], list[str]]:
    """The figures of one part, and the errors of what it could not measure."""
    if part == "lab":
        lab = run_lab_benchmarks(settings)
        return lab.figures, lab.errors
    if part == "insights":
        try:
            return run_insights_benchmark(settings, lambda line: print(line, file=sys.stderr)), []
        except Exception as exc:
            return [], [f"insights: {type(exc).__name__}: {exc}"]
    if part == "report":
        report = run_report_benchmarks(settings)
        return report.figures, report.errors
    evidence = run_evidence_benchmarks(settings)
    return evidence.figures, evidence.errors


def usage() -> str:
    lines = [
        "python -m bench [lab] [evidence] [report] [insights]: run the benchmarks, print a table,",
        "write bench/results.json.",
        "",
        "Parts (default: all three): lab = lab start, $connect/s, held connections, broadcast fan-out;",
        "evidence = log lines/s against a per-line loop, DynamoDB pages against TypeDeserializer,",
        "peak memory parsing 1M log lines and `kit logs parse` of a 200 MB file; report = a warm report",
        "of 00_diagnose against papermill of an empty notebook plus HTML export (target: at most twice",
        "that floor plus a lab start), and make report whole (every notebook, its own lab; target 30 s);",
        "insights = time to diagnosis on a simulated account (200k events),",
        "Logs Insights against downloading everything (AWS's quotas emulated on a fake clock).",
        "",
        "python -m bench peers (make bench-peers, which installs serverless-offline 13 into bench/peers):",
        "the lab beside serverless-offline, same handler, engine and clients, at 1, 10 and 50 clients;",
        "writes the `peers` section of the results.",
        "",
        "Environment:",
        f"  {SCALE_ENV:<22} multiplies the sizes marked below (default 1; 0.1 is quick)",
        *_size_lines(SIZES.values()),
        f"  {OUTPUT_ENV:<22} where the results go (default {DEFAULT_OUTPUT})",
        f"  {REPORT_NOTEBOOKS_ENV:<22} notebooks make report's figure runs, comma-separated (default: all)",
        "",
        "Environment of `peers`, besides the scale and the output:",
        f"  {CLIENTS_ENV:<26} client counts, each a workload (default 1,10,50)",
        *_size_lines(PEER_SIZES.values(), width=26),
    ]
    return "\n".join(lines)


def _size_lines(specs: Iterable[Size], width: int = 22) -> list[str]:
    lines = []
    for spec in specs:
        scaled = ", times the scale" if spec.scaled else ""
        default = f"{spec.default:,.0f}" if spec.default == int(spec.default) else f"{spec.default:g}"
        lines.append(f"  {spec.variable:<{width}} {spec.help} (default {default}{scaled})")
    return lines


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments == [PEERS]:
        return run_peers(os.environ)
    if any(argument not in PARTS for argument in arguments):
        print(usage(), file=sys.stdout if arguments[0] in ("-h", "--help") else sys.stderr)
        return 0 if arguments[0] in ("-h", "--help") else 2
    parts = [part for part in PARTS if part in arguments] if arguments else list(PARTS)
    try:
        settings = BenchSettings.from_environment(os.environ)
    except ConfigurationError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = describe_machine()
    figures: list[Figure] = []
    errors: list[str] = []
    for part in parts:
        part_figures, part_errors = run_part(part, settings)
        figures += part_figures
        errors += part_errors
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    document = results_document(
        figures,
        machine=machine,
        settings={**settings.as_dict(), "parts": parts},
        started_at=started_at,
        duration_s=time.monotonic() - started,
        errors=errors,
    )
    write_results(settings.output, carried_over(read_results(settings.output), document))

    print(render_table(figures))
    for error in errors:
        print(f"\nERROR: {error}")
    cpus, memory, python = (machine.get(key) for key in ("cpus_usable", "memory_gb", "python"))
    load = f"{machine.get('load_average_1m_at_start')} -> {machine.get('load_average_1m_at_end')}"
    where = f"{cpus} CPU(s), {memory} GB, Python {python}, load average {load}"
    print(f"\n{where}; {document['duration_s']} s; results in {settings.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
