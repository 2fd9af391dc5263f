"""kit: investigate API Gateway WebSocket connections that open but are never stored in DynamoDB.

The package is the repeatable part of the investigation; notebooks under ``notebooks/`` stay thin and call
into it. See ``docs/architecture.md`` for the shape.
"""

from __future__ import annotations

__version__ = "0.1.0"
