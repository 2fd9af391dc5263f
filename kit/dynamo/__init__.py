"""The connections table: its schema and description (``schema``, ``table``), its items (``items``), and the
storage test that writes one item with the kit's own credentials (``direct_write``)."""
