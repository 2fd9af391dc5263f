"""``python -m bench`` (``make bench``): run the lab benchmarks, print a table, write ``bench/results.json``.

Sizes come from the environment (see :mod:`bench.settings`; ``KIT_BENCH_SCALE=0.1`` for a quick run) and
the results file goes to ``$KIT_BENCH_OUTPUT`` when set. Progress goes to stderr, the table to stdout. The
exit status is 1 when a figure could not be measured at all, 0 otherwise: an unmet target is a finding to
read in the table, not a failure of the bench.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime

from bench.figures import render_table, results_document
from bench.lab import run_lab_benchmarks
from bench.machine import describe_machine
from bench.settings import DEFAULT_OUTPUT, OUTPUT_ENV, SCALE_ENV, SIZES, BenchSettings
from kit.errors import ConfigurationError


def usage() -> str:
    lines = [
        "python -m bench: run the lab benchmarks, print a table, write bench/results.json.",
        "",
        "Environment:",
        f"  {SCALE_ENV:<22} multiplies the connection counts and the hold time (default 1; 0.1 is quick)",
    ]
    for spec in SIZES.values():
        scaled = ", times the scale" if spec.scaled else ""
        lines.append(f"  {spec.variable:<22} {spec.help} (default {spec.default:g}{scaled})")
    lines.append(f"  {OUTPUT_ENV:<22} where the results go (default {DEFAULT_OUTPUT})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments:
        print(usage(), file=sys.stdout if arguments[0] in ("-h", "--help") else sys.stderr)
        return 0 if arguments[0] in ("-h", "--help") else 2
    try:
        settings = BenchSettings.from_environment(os.environ)
    except ConfigurationError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = describe_machine()
    result = run_lab_benchmarks(settings)
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    document = results_document(
        result.figures,
        machine=machine,
        settings=settings.as_dict(),
        started_at=started_at,
        duration_s=time.monotonic() - started,
        errors=result.errors,
    )
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = settings.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    temporary.replace(settings.output)

    print(render_table(result.figures))
    for error in result.errors:
        print(f"\nERROR: {error}")
    cpus, memory, python = (machine.get(key) for key in ("cpus_usable", "memory_gb", "python"))
    load = f"{machine.get('load_average_1m_at_start')} -> {machine.get('load_average_1m_at_end')}"
    where = f"{cpus} CPU(s), {memory} GB, Python {python}, load average {load}"
    print(f"\n{where}; {document['duration_s']} s; results in {settings.output}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
