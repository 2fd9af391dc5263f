"""The ``kit`` command: the terminal face of the package.

Each subcommand parses its arguments, calls into the package and prints. Errors the kit raises on purpose
(``KitError``) become one line on stderr and exit code 2; nothing here prints a traceback to the user.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit import __version__
from kit.errors import ConfigurationError, KitError

if TYPE_CHECKING:
    from kit.output import Format, View

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
    from kit.lab import provision
    from kit.lab.lab import Lab
    from kit.local import lab_file
    from kit.target import DEFAULT_LAB_REGION

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    function = None
    if args.function is not None:
        from kit.lab import function_source

        function = function_source.function_source(args.function, args.handler, args.runtime, args.env)
    elif args.handler or args.env:
        raise ConfigurationError("--handler and --env go with --function (your own function's code).")
    runtime = args.runtime or provision.DEFAULT_RUNTIME
    if args.source == "aws":
        lab = Lab(mirror=_read_mirror(args), dynamodb=args.dynamodb)
    else:
        for flag in (
            "profile",
            "env_file",
            "api_id",
            "websocket_url",
            "table",
            "function_code",
            "copy_items",
        ):
            if getattr(args, flag):
                raise ConfigurationError(f"--{flag.replace('_', '-')} goes with --from aws (a mirror).")
        region = args.region or DEFAULT_LAB_REGION
        lab = Lab(args.scenario, dynamodb=args.dynamodb, region=region, runtime=runtime, function=function)
    with lab:
        assert lab.info is not None
        print(json.dumps({**lab.info.as_dict(), "lab_file": str(lab_file())}, indent=2), flush=True)
        if lab.manifest is not None:
            from kit.mirror import manifest_file

            print(f"{lab.manifest.summary()}; the manifest: {manifest_file()}", file=sys.stderr, flush=True)
        elif lab.resources is not None and lab.resources.loaded:
            print(lab.resources.loaded, file=sys.stderr, flush=True)
        print(
            f"lab up (scenario {lab.info.scenario}, function on {lab.info.runtime}); connect to "
            f"{lab.info.websocket_url}; Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not stop.wait(0.5) and lab.failure is None:
                pass
        except KeyboardInterrupt:
            pass
    if lab.failure is not None:  # its engine died and could not be restarted (already said on stderr)
        print(f"lab stopped: {lab.failure}", file=sys.stderr)
        return EXIT_KIT_FAILED
    print("lab stopped", file=sys.stderr)
    return EXIT_OK


def _read_mirror(args: argparse.Namespace) -> Any:
    """``kit lab up --from aws``: the account's stack, read read-only, before anything starts."""
    import secrets

    from kit import mirror

    if args.scenario != "healthy" or args.function or args.runtime:
        raise ConfigurationError(
            "--from aws mirrors the account as it is: it takes no --scenario, --function or --runtime."
        )
    if args.copy_items < 0:
        raise ConfigurationError(f"--copy-items {args.copy_items}: give a number of items, 0 or more.")
    code = mirror.parse_function_code(args.function_code)
    target = _target_from_args(argparse.Namespace(**{**vars(args), "target": "aws"})).as_read_only()
    print(f"reading {target.label} (read-only) ...", file=sys.stderr, flush=True)
    return mirror.read_account(
        target, function_code=code, copy_items=args.copy_items, salt=secrets.token_hex(8)
    )


def _target_from_args(args: argparse.Namespace) -> Any:
    """The target the command's ``--target``, ``--profile``, ... name (``Target.from_parameters``); a real
    account's credentials are tried once first, so that expired or unknown ones are one line, not a page of
    unread evidence."""
    from kit.target import Target

    target = Target.from_parameters(
        args.target,
        profile=args.profile,
        region=args.region,
        table=args.table,
        env_file=args.env_file,
        websocket_url=args.websocket_url,
        dynamodb_url=getattr(args, "endpoint", None),  # `kit table --endpoint` only
        allow_writes=getattr(args, "allow_writes", False),
        api_id=getattr(args, "api_id", None),
    )
    if target.kind == "aws":
        _check_credentials(target)
    return target


def _check_credentials(target: Any) -> None:
    """``sts:GetCallerIdentity`` with the target's credentials: a credentials problem is a KitError naming the
    profile and what to do; anything else (the network, a denied STS) is left to the command, which reads
    what it can."""
    from botocore.exceptions import BotoCoreError, ClientError

    from kit.errors import CREDENTIAL_NEXT_STEPS, AwsError, error_code

    try:
        target.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) in CREDENTIAL_NEXT_STEPS:
            whose = f"profile {target.profile}" if target.profile else target.source or "the default chain"
            raise AwsError.from_botocore(
                exc, "sts", "GetCallerIdentity", whose, resource_type="credentials of"
            ) from exc


def _output_format(args: argparse.Namespace) -> Format:
    if getattr(args, "json", False):
        return "json"
    return "csv" if getattr(args, "csv", False) else "table"


def _print_frame(frame: Any, args: argparse.Namespace) -> None:
    """A DataFrame as a readable table, JSON records (--json) or CSV (--csv): see kit.output."""
    from kit import output

    output.print_frame(frame, _output_format(args), sys.stdout)


def _cmd_diagnose(args: argparse.Namespace) -> int:
    """Read the evidence, run the checks, print the ranked root cause.

    Exit 0 none, 1 a cause or a symptom, 2 failed, 3 inconclusive (``kit.diagnose.causes.exit_code``).
    """
    from kit.diagnose import causes, ranking, reading

    target = _target_from_args(args)
    evidence = reading.read_evidence(
        target, probe_plan=_probe_plan(args), allow_aws_probe=args.allow_aws_probe
    )
    for note in evidence.notes:  # how the reading chose what it read, e.g. an API found by listing
        print(f"kit: note: {note}", file=sys.stderr)
    result = ranking.diagnose(evidence)
    print(ranking.to_json(result) if args.json else ranking.summary_text(result))
    return causes.exit_code(str(result.root_cause["id"]))


def _probe_plan(args: argparse.Namespace, client: Mapping[str, bool] | None = None) -> Any:
    """The probe the command's flags describe, with the fixed client's settings on top; None for 0 clients."""
    from dataclasses import replace

    from kit.probe_core import ProbePlan

    if not args.probe_clients:
        return None
    plan = ProbePlan(
        clients=args.probe_clients,
        include_workspace_id=not args.no_workspace_id,
        close_after_connect=args.close_at_once,
        join_after_connect=args.probe_join,
    )
    settings: dict[str, Any] = dict(client or {})
    return replace(plan, **settings)


def _cmd_fix(args: argparse.Namespace) -> int:
    """Diagnose, then print the fix for the ranked cause; ``--verify`` applies it on the lab and diagnoses
    again; ``--apply`` changes the target (a real account: with --allow-writes and a confirmation); ``--undo``
    takes the last applied fix back. Exit 0 fixed or a fix printed, 1 not enough, 2 failed, 3 inconclusive."""
    from kit import fix, fix_apply, local
    from kit.diagnose import causes, ranking, reading

    target = _target_from_args(args)
    journal_dir = local.state_dir() / "fixes"
    if args.undo:
        applied = fix_apply.read_journal(journal_dir)
        _confirm(args, target, [c.summary for c in reversed(applied.undo)])
        done = fix_apply.undo(target, applied)
        for call in done.calls:
            print(f"called {call}")
        (journal_dir / "last").unlink(missing_ok=True)
        return EXIT_OK
    # A real account is read as read-only even with --allow-writes: that opt-in is for the fix, after the
    # confirmation, never for the storage test before it.
    reader = target if target.kind == "lab" else target.as_read_only()
    evidence = reading.read_evidence(
        reader, probe_plan=_probe_plan(args), allow_aws_probe=args.allow_aws_probe
    )
    diagnosis = ranking.diagnose(evidence)
    planned = fix.plan(diagnosis, evidence)
    if args.json and not (args.verify or args.apply):
        print(json.dumps(planned.as_dict(), indent=2))
    else:
        print(planned.text())
    if causes.exit_code(planned.cause) == causes.EXIT_INCONCLUSIVE:
        return causes.EXIT_INCONCLUSIVE
    if not (args.verify or args.apply) or not planned.applicable:
        return EXIT_OK
    if args.verify:
        if target.kind != "lab":
            raise KitError(
                "kit fix --verify applies the fix to the lab and diagnoses again; for a real account, mirror "
                "it first (kit lab up --from aws) and verify there, or apply with --apply --allow-writes."
            )

        # The diagnosis after the fix needs connections made after it: a probe, of 2 clients at least.
        probing = argparse.Namespace(**{**vars(args), "probe_clients": max(args.probe_clients, 2)})

        def read(since: Any, client: Mapping[str, bool]) -> Any:
            return reading.read_evidence(target, since=since, probe_plan=_probe_plan(probing, client))

        applied = fix_apply.Applied()
        try:
            result, _ = fix_apply.verify(target, planned, read, ranking.diagnose, into=applied)
        finally:  # what was applied is journaled even when a later change or the diagnosis failed
            for call in applied.calls:
                print(f"called {call}")
            written = fix_apply.journal(applied, journal_dir)
        print(result.text)
        print(
            f"kit: the lab keeps the fix; `kit fix --undo` takes it back ({written.name}).", file=sys.stderr
        )
        return EXIT_OK if result.fixed else EXIT_FINDING
    if target.kind == "aws":
        planned = fix.for_account(planned)
    _confirm(args, target, [c.summary for c in planned.changes])
    applied = fix_apply.Applied()
    try:
        fix_apply.apply(target, planned, into=applied)
    finally:
        for call in applied.calls:
            print(f"called {call}")
        written = fix_apply.journal(applied, journal_dir)
    print(f"kit: applied; `kit fix --undo` takes it back ({written.name}).", file=sys.stderr)
    return EXIT_OK


def _confirm(args: argparse.Namespace, target: Any, summaries: list[str]) -> None:
    """On a real account: say every change, then ask (``--yes`` answers for scripts)."""
    if target.kind != "aws":
        return
    target.require_writes("change the account")
    print(f"About to change {target.label}:")
    for summary in summaries:
        print(f"  - {summary}")
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise KitError(
            "kit fix --apply asks before changing a real account; answer with --yes when no one can type."
        )
    try:
        answer = input("Type yes to go on: ")
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() != "yes":
        raise KitError("Nothing was changed: the answer was not yes.")


def _cmd_probe(args: argparse.Namespace) -> int:
    from kit import probe, probe_core

    target = _target_from_args(args)
    plan = probe_core.ProbePlan(
        clients=args.clients, include_workspace_id=not args.no_workspace_id, join_after_connect=args.join
    )
    frame = probe.run_probe(target, plan, allow_aws=args.allow_aws_probe)
    _print_frame(frame if args.rows else probe_core.summarise(frame), args)
    failed = frame["ok"].eq(False).fillna(False).any()
    return EXIT_FINDING if failed else EXIT_OK


def _cmd_logs(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from kit import config, logparse, logs, output

    if args.action == "parse":
        if not args.file:
            raise KitError(
                "kit logs parse needs a FILE (raw log lines or an `aws logs filter-log-events` export)."
            )
        return _parse_log_file(Path(args.file), _output_format(args), args.log_group, args.columns)
    target = _target_from_args(args)
    answers = config.fetch_api(target)
    functions = config.fetch_functions(target, config.functions_for_api(target, answers))
    groups = logs.log_groups_frame(functions, answers.api_id, answers.stage_for(target.api_id, target.stage))
    start = datetime.now(UTC) - timedelta(minutes=args.minutes)
    fetched = logs.fetch_events(target.client("logs"), groups["log_group"].tolist(), start=start)
    parsed = logparse.parse(fetched.events)
    views = {
        "events": parsed,
        "invocations": logparse.invocations(parsed),
        "connections": logparse.connection_lifecycle(parsed),
        "groups": fetched.report,
    }
    frame = views[args.action]
    form = _output_format(args)
    output.print_frame(
        frame, form, sys.stdout, _log_view(form, [str(c) for c in frame.columns], args.columns)
    )
    return EXIT_OK


READ_BLOCK = 1 << 20  # bytes read from a log file at a time


def _log_view(form: Format, all_columns: list[str], asked: str | None) -> View:
    """How a log frame is written (kit.output.FrameWriter's options): --columns if asked; in a terminal
    table, what a person reads (kit.output.LOG_VIEW, the columns with a value) fitted to the terminal."""
    import shutil

    from kit import output

    chosen = output.choose_columns(all_columns, asked)
    if form != "table":
        return output.View(chosen)
    default = chosen is None and "message" in all_columns
    if default:
        chosen = [c for c in output.LOG_VIEW if c in all_columns]
    width = shutil.get_terminal_size((120, 24)).columns if chosen else None
    return output.View(chosen, width, drop_empty=default)


def _parse_log_file(
    path: Path, form: Format, log_group: str | None = None, columns: str | None = None
) -> int:
    """``kit logs parse FILE``: the file read, parsed and written a part at a time (kit.logparse.reading,
    kit.logparse.streaming, kit.output), so memory stays near one part's whatever the file's size.

    Broken input (an export cut short, a bad timestamp, a line that never ends): the events before it are
    written, the output is closed (a --json array stays valid), and the error says where; exit 2.
    """
    from kit import frames, output
    from kit.logparse import reading, streaming
    from kit.logparse.columns import LOG_COLUMNS

    try:
        opened = [path.open("rb")]  # the first pass's; a pipe can be opened only once
    except OSError as exc:
        raise KitError(f"cannot read {path}: {exc.strerror}.") from exc

    def blocks() -> Iterator[bytes]:
        try:
            with opened.pop() if opened else path.open("rb") as file:
                while block := file.read(READ_BLOCK):
                    yield block
        except OSError as exc:
            raise KitError(f"cannot read {path}: {exc.strerror}.") from exc

    view = _log_view(form, list(LOG_COLUMNS), columns)
    parts = streaming.PartsParse(
        lambda: reading.file_parts(blocks(), str(path), log_group=log_group), can_reread=path.is_file()
    )
    writer = output.FrameWriter(form, sys.stdout, view)
    try:
        for part in parts:
            writer.write(part)
    except reading.NotLogText:
        raise  # nothing was read, so nothing is written: the one line says what the file is
    except KitError as exc:
        if not writer.rows:
            writer.write(frames.empty(LOG_COLUMNS))  # a CSV header, at least
        writer.close()
        raise KitError(f"{exc} Output stops there ({writer.rows:,} events written).") from exc
    except BrokenPipeError:  # the reader went away (`| head`): stop reading, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_OK
    finally:
        for file in opened:
            file.close()
    writer.close()
    if parts.out_of_order:
        print(
            f"kit: note: {parts.out_of_order:,} Lambda lines of {path} are older than lines of their stream "
            "in an earlier part of the file (it is not in time order), so request ids were carried to them "
            "in file order.",
            file=sys.stderr,
        )
    if parts.unsettled:
        print(
            f"kit: note: {parts.unsettled:,} lines of {path} were written as unknown before their stream's "
            "Lambda lines were seen (a pipe cannot be read twice); parse a file to have them read as Lambda "
            "output.",
            file=sys.stderr,
        )
    return EXIT_OK


def _minutes(text: str) -> int:
    """``--minutes``: a whole number of minutes from 1 to :data:`MAX_MINUTES` (a window must hold time)."""
    try:
        minutes = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of minutes, got {text!r}") from None
    if not 1 <= minutes <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(
            f"{minutes} is outside 1 to {MAX_MINUTES:,} (20 years): the window reaches back that many "
            "minutes from now"
        )
    return minutes


MAX_MINUTES = 60 * 24 * 7305  # 20 years, longer than CloudWatch Logs has existed


def _cmd_iam(args: argparse.Namespace) -> int:
    from kit import iam, permissions
    from kit.target import DEFAULT_INDEX, DEFAULT_LAB_REGION, DEFAULT_TABLE

    if args.policy_file:
        policies = iam.policies_from_file(args.policy_file)
        target = _target_from_args(args) if args.target == "lab" and not args.offline else None
        region = target.region if target else (args.region or DEFAULT_LAB_REGION)
        checks = permissions.required_checks(
            region,
            "123456789012",
            args.table or DEFAULT_TABLE,
            DEFAULT_INDEX,
            (target.api_id if target else None) or "*",
            (target.stage if target else None) or "prod",
            args.function,
        )
        frame = iam.permission_frame(policies, checks)
    else:
        frame = iam.role_permissions(_target_from_args(args), args.function)
    _print_frame(frame, args)
    return EXIT_FINDING if not frame["allowed"].fillna(False).all() else EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from kit import config, env_check

    target = _target_from_args(args)
    answers = config.fetch_api(target)
    if args.action == "routes":
        frame = config.routes_frame(answers.routes, answers.integrations, answers.authorizers)
    elif args.action == "functions":
        frame = config.function_frame(
            config.fetch_functions(target, config.functions_for_api(target, answers))
        )
    elif args.action == "stage":
        frame = config.stage_frame(answers.stages)
    else:
        if not args.env_file:
            raise KitError("kit config env needs --env-file PATH (your .env.local).")
        functions = config.fetch_functions(target, config.functions_for_api(target, answers))
        frame = env_check.env_file_check(args.env_file, target, config.function_frame(functions))
    _print_frame(frame, args)
    return EXIT_OK


def _cmd_table(args: argparse.Namespace) -> int:
    """Compare the connections table with the expected schema (or create it locally)."""
    from kit.dynamo import schema

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


def _parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` for -p: VALUE read as JSON when it is JSON (``5``, ``true``, ``"x"``), else a string."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _cmd_report(args: argparse.Namespace) -> int:
    """Run the notebooks into a report folder; print the folder and the ranked cause. Exit 0/1/2/3, or with
    --exit-on-change 0/4/2. ``--bundle FOLDER`` only bundles that existing run folder."""
    from kit.report import lean_imports, run_report
    from kit.report_bundle import write_bundle
    from kit.report_changes import change_exit_code

    lean_imports()
    if isinstance(args.bundle, str):
        print(_shown_path(write_bundle(Path(args.bundle))))
        return 0
    result = run_report(
        target=args.target,
        scenario=args.scenario,
        notebooks=args.notebooks,
        parameters=dict(args.parameter or []),
        env_file=args.env_file,
        profile=args.profile,
        region=args.region,
        reports_dir=Path(args.reports_dir),
        mask_emails=not args.no_mask_emails,
    )
    print(_shown_path(result.folder))
    print(result.cause_line())
    if args.bundle:
        print(_shown_path(write_bundle(result.folder)))
    if args.exit_on_change:
        return change_exit_code(result.changes, result.exit_code)
    return result.exit_code


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory when it is under it, as the user would type it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - the one place that lists every command
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
    lab.add_argument("--region", help="the lab's region (default us-east-2); with --from aws, the account's")
    lab.add_argument(
        "--from",
        dest="source",
        choices=["aws"],
        help="mirror a deployed stack: read it (read-only) from the account and build it in the lab",
    )
    lab.add_argument("--profile", help="with --from aws: the AWS profile")
    lab.add_argument("--env-file", help="with --from aws: the app's .env.local (region, table, URLs)")
    lab.add_argument(
        "--api-id", help="with --from aws: the WebSocket API (default: the URL's, or the only one)"
    )
    lab.add_argument("--websocket-url", help="with --from aws: the app's WebSocket URL")
    lab.add_argument(
        "--table", help="with --from aws: the connections table (default chatgenius-connections)"
    )
    lab.add_argument(
        "--function-code",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="with --from aws: a function's code (folder or .zip) when its code location cannot be read",
    )
    lab.add_argument(
        "--copy-items",
        type=int,
        default=0,
        metavar="N",
        help="with --from aws: copy up to N items of each table, masked (default 0: schema only)",
    )
    lab.add_argument(
        "--function",
        metavar="PATH",
        help="run your own function (its folder or deployment .zip) instead of the kit's handler",
    )
    lab.add_argument(
        "--handler",
        help="with --function: its handler string (default: the console's, index.handler for Node.js, "
        "lambda_function.lambda_handler for Python)",
    )
    lab.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=value",
        help="with --function: a variable of its environment (repeatable)",
    )
    lab.add_argument(
        "--runtime",
        default=None,
        help="the function's runtime: python3.x or nodejs18.x/20.x/22.x, Node.js on this machine's node "
        "(the kit's .py or .mjs handlers; with --function, detected from its files unless given); "
        "default python3.11",
    )
    lab.set_defaults(run=_cmd_lab)

    table = sub.add_parser("table", help="check the connections table against the expected schema")
    table.add_argument("--target", choices=["lab", "aws"], default="lab", help="lab reads .kit/lab.json")
    table.add_argument("action", choices=["diff", "create"], nargs="?", default="diff")
    table.add_argument("--endpoint", help="a local DynamoDB endpoint URL (DynamoDB Local or moto)")
    table.add_argument("--profile", help="AWS profile for a real account")
    table.add_argument("--region", help="AWS region (default: from the env file, AWS_REGION, the profile)")
    table.add_argument("--table", help="table name (default: chatgenius-connections or the env file's)")
    table.add_argument("--env-file", help="an .env.local-style file with region, table and credentials")
    table.add_argument("--websocket-url", help="wss://<api>.execute-api.<region>.amazonaws.com/<stage>")
    table.add_argument("--json", action="store_true", help="print the differences as JSON")
    table.add_argument(
        "--allow-writes", action="store_true", help="--target aws: let `create` make the table"
    )
    table.set_defaults(run=_cmd_table)

    def with_target(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument(
            "--target", choices=["lab", "aws"], default="lab", help="lab reads .kit/lab.json"
        )
        command.add_argument("--profile", help="AWS profile (--target aws)")
        command.add_argument(
            "--region", help="AWS region (default: the env file's, AWS_REGION, the profile's)"
        )
        command.add_argument("--table", help="connections table (default: chatgenius-connections)")
        command.add_argument("--env-file", help="an .env.local-style file (region, table, credentials, URLs)")
        command.add_argument("--websocket-url", help="wss://<api>.execute-api.<region>.amazonaws.com/<stage>")
        command.add_argument(
            "--api-id",
            help="the WebSocket API's id (a custom domain's URL does not carry it; default: the URL's)",
        )
        command.add_argument("--json", action="store_true", help="JSON output")
        command.add_argument("--csv", action="store_true", help="CSV output")
        return command

    diagnose = with_target(
        sub.add_parser(
            "diagnose", help="rank the root cause (exit 0 none, 1 cause, 2 failed, 3 inconclusive)"
        )
    )
    diagnose.add_argument("--probe-clients", type=int, default=0, help="also run a probe with N clients")
    diagnose.add_argument(
        "--probe-join",
        action="store_true",
        help="with --probe-clients: each sends a join message once connected",
    )
    diagnose.add_argument(
        "--no-workspace-id", action="store_true", help="with --probe-clients: connect without workspaceId"
    )
    diagnose.add_argument(
        "--close-at-once", action="store_true", help="with --probe-clients: close right after opening"
    )
    diagnose.add_argument(
        "--allow-aws-probe", action="store_true", help="let the probe connect to a real API"
    )
    diagnose.add_argument(
        "--allow-writes",
        action="store_true",
        help="--target aws: let the kit put, read back and delete one kit-probe-… item (storage test)",
    )
    diagnose.set_defaults(run=_cmd_diagnose)

    probe_cmd = with_target(
        sub.add_parser("probe", help="connect like the browser does and watch the backend")
    )
    probe_cmd.add_argument("--clients", type=int, default=2)
    probe_cmd.add_argument("--no-workspace-id", action="store_true", help="connect without workspaceId")
    probe_cmd.add_argument(
        "--join",
        action="store_true",
        help="send a join message right after connecting, as apps that register on join do",
    )
    probe_cmd.add_argument("--rows", action="store_true", help="one row per client per step, not a summary")
    probe_cmd.add_argument("--allow-aws-probe", action="store_true", help="required with --target aws")
    probe_cmd.set_defaults(run=_cmd_probe)

    logs_cmd = with_target(sub.add_parser("logs", help="CloudWatch logs as tables; `kit logs parse FILE`"))
    logs_cmd.add_argument(
        "action",
        choices=["invocations", "connections", "events", "groups", "parse"],
        default="invocations",
        nargs="?",
    )
    logs_cmd.add_argument(
        "file",
        nargs="?",
        help="for `parse`: raw lines (also as `aws logs tail` or `sam logs` print them) or a "
        "filter-log-events / get-log-events JSON export",
    )
    logs_cmd.add_argument(
        "--columns",
        help="only these columns, comma-separated (default in a table: kind, ts, request_id, connection_id, "
        "route_key, http_status, message, fitted to the terminal; --json and --csv give them all)",
    )
    logs_cmd.add_argument(
        "--log-group",
        help="for `parse`: the log group the file came from (/aws/lambda/<function>, "
        "API-Gateway-Execution-Logs_<api>/<stage>), for lines that do not say",
    )
    logs_cmd.add_argument(
        "--minutes", type=_minutes, default=60, help="how far back to read, 1 or more (default 60)"
    )
    logs_cmd.set_defaults(run=_cmd_logs)

    iam_cmd = with_target(sub.add_parser("iam", help="what the execution role may do, action by action"))
    iam_cmd.add_argument("--function", default="chatgenius-websocket", help="the $connect function")
    iam_cmd.add_argument(
        "--policy-file", help="evaluate a policy file (e.g. iam-policies.json) instead of IAM"
    )
    iam_cmd.add_argument("--offline", action="store_true", help="with --policy-file: do not read the lab")
    iam_cmd.set_defaults(run=_cmd_iam)

    config_cmd = with_target(
        sub.add_parser("config", help="routes, functions, stage, and an .env.local check")
    )
    config_cmd.add_argument(
        "action", choices=["routes", "functions", "stage", "env"], nargs="?", default="routes"
    )
    config_cmd.set_defaults(run=_cmd_config)

    fix_cmd = with_target(
        sub.add_parser(
            "fix", help="the fix for the ranked cause: JSON, AWS CLI and boto3; --verify on the lab"
        )
    )
    fix_cmd.add_argument(
        "--probe-clients",
        type=int,
        default=2,
        help="probe clients for the diagnosis (a real account: with --allow-aws-probe)",
    )
    fix_cmd.add_argument("--probe-join", action="store_true", help="probe clients send a join message")
    fix_cmd.add_argument("--no-workspace-id", action="store_true", help="probe clients omit workspaceId")
    fix_cmd.add_argument(
        "--close-at-once", action="store_true", help="probe clients close right after opening"
    )
    fix_cmd.add_argument("--allow-aws-probe", action="store_true", help="let the probe connect to a real API")
    fix_cmd.add_argument(
        "--verify", action="store_true", help="apply on the lab, diagnose again, say if fixed"
    )
    fix_cmd.add_argument(
        "--apply", action="store_true", help="apply to the target (aws: with --allow-writes)"
    )
    fix_cmd.add_argument("--allow-writes", action="store_true", help="--target aws: let --apply/--undo write")
    fix_cmd.add_argument("--yes", action="store_true", help="do not ask before changing a real account")
    fix_cmd.add_argument("--undo", action="store_true", help="take back the last fix applied from here")
    fix_cmd.set_defaults(run=_cmd_fix)

    report = sub.add_parser(
        "report",
        help="run the notebooks into reports/<stamp>-<target>[-<scenario>]/ (exit 0 none, 1 cause, 2 failed, "
        "3 inconclusive; with --exit-on-change 0 same verdict, 4 changed, 2 failed)",
    )
    report.add_argument("--target", choices=["lab", "aws"], default="lab", help="lab starts one if none runs")
    report.add_argument("--scenario", help="the lab's scenario (default: the running lab's, else healthy)")
    report.add_argument(
        "--notebooks", nargs="+", metavar="NAME", help="e.g. 00_diagnose 03_logs (default: all of notebooks/)"
    )
    report.add_argument("--env-file", help="the app's .env.local (region, table, credentials, URLs)")
    report.add_argument("--profile", help="AWS profile (--target aws)")
    report.add_argument("--region", help="AWS region (default: the env file's, AWS_REGION, the profile's)")
    report.add_argument(
        "-p",
        "--parameter",
        action="append",
        type=_parameter,
        metavar="NAME=VALUE",
        help="another notebook parameter, e.g. -p since_minutes=180 (repeatable)",
    )
    report.add_argument("--reports-dir", default="reports", help="where run folders go (default: reports)")
    report.add_argument(
        "--no-mask-emails", action="store_true", help="keep e-mail addresses (secrets are always removed)"
    )
    report.add_argument(
        "--exit-on-change",
        action="store_true",
        help="for cron: exit 0 when the verdict is the previous run's of the same target, 4 when it changed "
        "(or there is no previous run), 2 when the kit failed",
    )
    report.add_argument(
        "--bundle",
        nargs="?",
        const=True,
        default=False,
        metavar="FOLDER",
        help="also write <run>.bundle.html, one file to send (pages, diagnosis first, notebooks attached); "
        "with FOLDER, only bundle that existing run folder",
    )
    report.set_defaults(run=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KitError as exc:
        print(f"kit: {exc}", file=sys.stderr)
        return EXIT_KIT_FAILED
    except Exception as exc:  # the kit itself failed: one line, and the traceback only on request
        if os.environ.get("KIT_DEBUG"):
            raise
        print(
            f"kit: unexpected {type(exc).__name__}: {exc} (set KIT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_KIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
