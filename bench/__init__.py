"""Benchmarks of the lab, run by ``make bench`` (``python -m bench``).

Each figure is measured against a baseline taken in the same run on the same machine, and reported as a ratio
with the target it is held to, so a slow machine moves value and baseline together and the ratio stays
meaningful. Figures go to a table on stdout and to ``bench/results.json``.

Layout: :mod:`bench.settings` (sizes, from the environment) and :mod:`bench.figures` (ratios, percentiles,
the table and the results document) are pure; :mod:`bench.lab` runs the measurements against a lab hosted in
a child process (:mod:`bench.lab_host`), with WebSocket clients from :mod:`bench.clients`, the raw
baselines from :mod:`bench.raw` and CPU and memory accounting from :mod:`bench.processes`;
:mod:`bench.machine` describes the machine. ``python -m bench --help`` lists the sizes.

What this package must not do: assert on timings (the smoke test checks shape, never speed), talk to
anything but loopback, or change the lab's code; it only drives the lab through its public surface.
"""

from __future__ import annotations
