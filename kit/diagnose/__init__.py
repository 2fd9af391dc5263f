"""The diagnosis: evidence → findings → a ranked root cause. The modules, in the order the data flows:

    reading            read_evidence(target) → Evidence: the only I/O; a section that cannot be read is
                       recorded, never raised
    findings           the shapes: Evidence, Finding, Diagnosis, Check, skip (pure, imports no check)
    config_checks      the $connect route and its integration, functions' TABLE_NAME, the stage's logging
    table_checks       the table's structure, the kit's own write, the items and the index
    permission_checks  the execution role: PutItem, Query on the index, the rest
    handler_checks     the handler at work, from its logs: crashes, swallowed errors, where and when it
                       writes, its own lines; connections closed at once, $connect not invoked
    symptom_checks     what the probe saw fail, and what could not be read
    causes             the catalogue of root causes: rank, next step, kind (which sets the exit code)
    ranking            CHECKS, run_checks, rank → Diagnosis; summary_text, to_json

Every check is a pure function of the evidence. Nothing here knows whether the target is the lab or a real
account, and nothing reads the lab's scenario. This file imports nothing: import each name from its module.
"""
