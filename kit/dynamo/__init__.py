"""The connections table. Its shape: ``schema`` (the table the seed expects, the one reader of a
``describe_table`` answer, the diff, creating it) and ``table`` (its description as a frame). What it holds:
``items`` (scans of the table and its index, the items frame, index coverage) and ``stale`` (stored
connections API Gateway no longer knows). The storage test that writes one item with the kit's own
credentials: ``direct_write``."""
