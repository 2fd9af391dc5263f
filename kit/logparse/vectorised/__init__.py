"""The vectorised parser behind :func:`kit.logparse.parse`: contained here, held to the per-line reference.

It reads the same lines, through the same definitions (:mod:`kit.logparse.patterns`), as
:mod:`kit.logparse.slow`, but in passes over whole columns (Arrow and NumPy) instead of a Python call per
line. It is an implementation detail of :mod:`kit.logparse`: callers use ``kit.logparse.parse``; inside the
package only :mod:`kit.logparse.streaming` reaches in (``parser.parse_part``, ``parser.lambda_shaped``).

    parser.py      the passes: the raw event frame in, LOG_COLUMNS out (parse, parse_part, lambda_shaped)
    textbuffer.py  reads of the messages' one UTF-8 buffer: chunks, offsets, places, prefix bytes, texts
                   copied out of byte ranges (texts_in_ranges), the haystack of literals
    building.py    the output columns while they are filled, and how they become the frame's
    jsonblock.py   JSON app and access-log lines read as blocks by Arrow's JSON reader
    re2.py         the shared Python patterns translated for RE2 (pyarrow.compute), or refused

What it buys. On 200,000 synthetic Lambda lines, 590-617k lines/s: 12.3-12.6x the per-line loop, and a
1M-line parse peaks at 872-895 MB with its 486 MB input held (``make bench``, as recorded in CHANGELOG.md on
2026-11-26, commit e501e68; issue 11 rounds it to 13x). The figures move with the machine's load; measure
them again with ``python -m bench evidence`` (``log_parse_speedup``, ``log_parse_rate``) or
``KIT_BENCH=1 pytest tests/unit/test_logparse_bench.py -s``, which on 2026-12-03 (CPU seconds, a shared
machine) gave 12.4-16.2x on its three mixes with app lines and 22.8x on platform lines alone. It is what
lets ``kit logs parse`` read an export of millions of lines in seconds, and the lab's and the tests' logs
at no noticeable cost.

What holds it to the reference. :func:`kit.logparse.parse_lines_slow` is the oracle: wherever both run,
the two frames must be equal, every column and row (``pandas.testing.assert_frame_equal``).

- ``tests/unit/test_logparse_oracle.py`` (hypothesis: lines of every documented shape, cut short, prefixed
  or junk; groups, streams and timestamps drawn too): ``test_vectorised_parser_agrees_with_the_reference``,
  ``test_chunk_boundaries_change_nothing`` (chunks down to one line or byte),
  ``test_without_string_views_the_lines_are_read_the_other_way`` (``texts_in_ranges`` refused),
  ``test_any_text_at_all``, ``test_derived_frames_keep_their_contract``.
- Every table case goes through both parsers: ``test_logparse.py`` (``parse_one``), ``test_logparse_lab.py``
  (``parse_lines``: the lab's own log formatters), ``test_logparse_derived.py::
  test_scenario_is_read_the_same_by_both_parsers``, ``test_logparse_inputs.py::
  test_fixture_files_parse_with_every_row_kept``.
- Its parts: ``test_logparse_jsonblock.py`` (a block gives what the per-line rule gives, or hands the row
  back), ``test_logparse_re2.py`` (a translated pattern finds what Python's finds; the haystack finds what
  ``str.contains`` finds), ``test_logparse_textbuffer.py`` (buffer reads; the REPORT lines read at their
  tabs are exactly those ``REPORT_AS_LAMBDA_WRITES`` matches, read as ``REPORT_CORE`` reads them).
- ``test_logparse_streaming.py``: a parse a part at a time equals the whole parse.
- The benchmarks compare equal work only: ``test_logparse_bench.py`` asserts the frames equal, and
  ``bench/evidence.py`` marks a ratio whose frames differ.

Why no further speed work. On a real account the pace is set by CloudWatch Logs, not by parsing:
FilterLogEvents has a quota of 5 calls per second per account and Region, shared with the console and
other tools (:mod:`kit.logs` keeps to 4), and a call returns at most 10,000 events (1 MB). That is at most
40-50k events a second fetched: about what even the per-line loop reads (40-48k lines/s), and a tenth of a
second's work here. A faster parser would save the user no waiting. A new line format goes into
``patterns.py`` and ``slow.py`` first, then here, with the oracle tests passing.

Pure: no I/O.
"""
