"""The function configuration the Lambda unit tests start from: data only, nothing runs it."""

from __future__ import annotations

from typing import Any

from kit.lab.lambda_config import FunctionConfig


def function(**changes: Any) -> FunctionConfig:
    """The ``probe`` function in us-east-2 (``lab_probe.counter``, 3 s); ``changes`` override any field."""
    fields: dict[str, Any] = {"function_name": "probe", "handler": "lab_probe.counter", "region": "us-east-2"}
    return FunctionConfig(**{**fields, "timeout_s": 3, **changes})
