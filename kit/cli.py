"""The ``kit`` command: the terminal face of the package.

Each subcommand parses its arguments, calls into the package and prints. Errors the kit raises on purpose
(``KitError``) become one line on stderr and exit code 2; nothing here prints a traceback to the user.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kit import __version__
from kit.errors import KitError

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_KIT_FAILED = 2


def _cmd_engine(args: argparse.Namespace) -> int:
    """Run a DynamoDB engine in the foreground until Ctrl-C or SIGTERM."""
    from kit.lab import engines

    engine = engines.start_dynamodb(args.dynamodb)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(json.dumps({"engine": engine.name, "endpoint_url": engine.endpoint_url}), flush=True)
        print("Press Ctrl-C to stop.", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
    return EXIT_OK


def _cmd_lab(args: argparse.Namespace) -> int:
    """``kit lab up`` (foreground until Ctrl-C/SIGTERM) and ``kit lab scenarios``."""
    from kit.lab import scenarios

    if args.action == "scenarios":
        width = max(len(name) for name in scenarios.SCENARIOS)
        for scenario in scenarios.SCENARIOS.values():
            print(f"{scenario.name:{width}}  {scenario.summary}")
        return EXIT_OK
    from kit.lab.lab import Lab, lab_file

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Lab(args.scenario, dynamodb=args.dynamodb, region=args.region) as lab:
        assert lab.info is not None
        print(json.dumps({**lab.info.as_dict(), "lab_file": str(lab_file())}, indent=2), flush=True)
        print(
            f"lab up (scenario {lab.info.scenario}); connect to {lab.info.websocket_url}; Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("lab stopped", file=sys.stderr)
    return EXIT_OK


def _target_from_args(args: argparse.Namespace) -> Any:
    from kit.target import Target

    if getattr(args, "target", None) == "lab":
        from kit.lab.lab import lab_target

        return lab_target()
    if args.endpoint:
        return Target.local({"dynamodb": args.endpoint}, region=args.region or "us-east-2", table=args.table)
    return Target.aws(profile=args.profile, region=args.region, table=args.table, env_file=args.env_file)


def _cmd_table(args: argparse.Namespace) -> int:
    """Compare the connections table with the expected schema (or create it locally)."""
    from kit import schema

    target = _target_from_args(args)
    client = target.client("dynamodb")
    if args.action == "create":
        target.require_writes(f"create table {target.table}")
        schema.create_table(client, name=target.table)
        print(f"table {target.table} is ready in {target.region}")
        return EXIT_OK
    expected = schema.EXPECTED
    differences = schema.diff_table(schema.describe(client, target.table), expected.renamed(target.table))
    if args.json:
        print(json.dumps([d.as_dict() for d in differences], indent=2))
    elif not differences:
        print(f"table {target.table} in {target.region} matches the expected schema")
    else:
        for difference in differences:
            print(f"{difference.severity:7} {difference.kind:18} {difference.message}")
    return EXIT_FINDING if any(d.severity == "error" for d in differences) else EXIT_OK


def _not_built(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(
            f"kit {name}: not built yet (see the open issues); `make test` and `kit table` work today.",
            file=sys.stderr,
        )
        return EXIT_KIT_FAILED

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kit",
        description="Investigate WebSocket connections that open but are never stored in DynamoDB.",
    )
    parser.add_argument("--version", action="version", version=f"kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    engine = sub.add_parser("engine", help="run a local DynamoDB engine in the foreground")
    engine.add_argument("--dynamodb", choices=["auto", "dynamodb-local", "moto"], default="auto")
    engine.set_defaults(run=_cmd_engine)

    lab = sub.add_parser("lab", help="the local lab: `kit lab up [--scenario NAME]`, `kit lab scenarios`")
    lab.add_argument("action", choices=["up", "scenarios"])
    lab.add_argument("--scenario", default="healthy", help="see `kit lab scenarios` (default: healthy)")
    lab.add_argument("--dynamodb", choices=["auto", "dynamodb-local", "moto"], default="auto")
    lab.add_argument("--region", default="us-east-2")
    lab.set_defaults(run=_cmd_lab)

    table = sub.add_parser("table", help="check the connections table against the expected schema")
    table.add_argument("--target", choices=["lab", "aws"], default="aws", help="lab reads .kit/lab.json")
    table.add_argument("action", choices=["diff", "create"], nargs="?", default="diff")
    table.add_argument("--endpoint", help="a local DynamoDB endpoint URL (DynamoDB Local or moto)")
    table.add_argument("--profile", help="AWS profile for a real account")
    table.add_argument("--region", help="AWS region (default: from the env file, AWS_REGION, the profile)")
    table.add_argument("--table", help="table name (default: chatgenius-connections or the env file's)")
    table.add_argument("--env-file", help="an .env.local-style file with region, table and credentials")
    table.add_argument("--json", action="store_true", help="print the differences as JSON")
    table.set_defaults(run=_cmd_table)

    for name in ("probe", "logs", "iam", "config", "diagnose", "report"):
        stub = sub.add_parser(name, help="(not built yet)")
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(run=_not_built(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KitError as exc:
        print(f"kit: {exc}", file=sys.stderr)
        return EXIT_KIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
