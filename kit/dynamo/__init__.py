"""The connections table. Its shape: ``schema`` (the table the seed expects, the one reader of a
``describe_table`` answer, the diff, creating it) and ``table`` (its description as a frame). What it holds:
``items`` (scans of the table and its index, the items frame, index coverage) and ``stale`` (stored
connections API Gateway no longer knows). What writes to it, only on a writable target: ``direct_write`` (the
storage test, one item of the kit's own) and ``exercise`` (the seed's and the fixed ``$connect`` handler run
side by side in the kernel, their items read back and deleted)."""
