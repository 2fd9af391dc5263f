"""The DynamoDB engine launcher: listens on loopback only, answers, keeps regions apart, stops without
orphans."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import local_client

from kit.errors import EngineError
from kit.lab import engines, jvm_archive, sockets

pytestmark = pytest.mark.integration

JAVA_AND_JAR = engines.find_dynamodb_local() is not None and shutil.which("java") is not None
needs_dynamodb_local = pytest.mark.skipif(
    not JAVA_AND_JAR, reason="DynamoDB Local or Java missing; `make setup` installs the jar"
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; read its state so a reaped-but-listed child doesn't count as alive.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_session_engine_is_dynamodb_local_when_java_is_present(dynamodb_engine) -> None:
    if os.environ.get("KIT_TEST_DYNAMODB") == "moto":
        pytest.skip("moto forced by KIT_TEST_DYNAMODB")
    if JAVA_AND_JAR:
        assert dynamodb_engine.name == "dynamodb-local"
    assert dynamodb_engine.endpoint_url.startswith("http://127.0.0.1:")


@needs_dynamodb_local
def test_dynamodb_local_listens_on_loopback_only(dynamodb_engine) -> None:
    """Left alone, DynamoDB Local binds every interface; the kit's launcher binds it to 127.0.0.1."""
    if dynamodb_engine.name != "dynamodb-local":
        pytest.skip("moto forced by KIT_TEST_DYNAMODB")
    listening = sockets.listeners([dynamodb_engine.pid])
    assert [(s.host, s.port) for s in listening] == [("127.0.0.1", dynamodb_engine.port)], listening


def _outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), or None offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if sockets.is_loopback(address) else address


@needs_dynamodb_local
def test_dynamodb_local_refuses_connections_on_the_machines_other_address(dynamodb_engine) -> None:
    if dynamodb_engine.name != "dynamodb-local":
        pytest.skip("moto forced by KIT_TEST_DYNAMODB")
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback to try")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, dynamodb_engine.port), timeout=5).close()
    socket.create_connection((engines.LOOPBACK, dynamodb_engine.port), timeout=5).close()


def test_regions_are_kept_apart(dynamodb_engine, table_name) -> None:
    east1 = local_client("dynamodb", dynamodb_engine.endpoint_url, "us-east-1")
    east2 = local_client("dynamodb", dynamodb_engine.endpoint_url, "us-east-2")
    east1.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert table_name in east1.list_tables()["TableNames"]
    if dynamodb_engine.name == "dynamodb-local":
        assert table_name not in east2.list_tables()["TableNames"]


@needs_dynamodb_local
def test_stop_leaves_no_jvm_and_frees_the_port() -> None:
    engine = engines.start_dynamodb_local()
    assert engine.pid is not None and _pid_alive(engine.pid)
    assert engine.alive()
    engine.stop()
    assert not _pid_alive(engine.pid)
    assert not engine.alive()


@needs_dynamodb_local
def test_jvm_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL of the Python process that started the JVM must not leave the JVM running."""
    script = textwrap.dedent(
        """
        import sys, time
        from kit.lab import engines, sockets
        engine = engines.start_dynamodb_local()
        print(engine.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    jvm_pid = int(parent.stdout.readline())
    assert _pid_alive(jvm_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while _pid_alive(jvm_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(jvm_pid), "DynamoDB Local outlived the process that started it"


def test_missing_java_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    with pytest.raises(EngineError, match="Java was not found"):
        engines.start_dynamodb_local()


def test_a_jre_without_javac_is_one_clear_error_and_auto_falls_back_to_moto(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(engines, "_javac_for", lambda java: None)
    with pytest.raises(EngineError, match=r"needs the JDK's javac.*install a JDK 17"):
        engines.start_dynamodb("dynamodb-local")
    with engines.start_dynamodb("auto") as engine:
        assert engine.name == "moto"
    assert "Falling back to moto" in capsys.readouterr().err


@needs_dynamodb_local
def test_the_launcher_is_compiled_once_and_then_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(engines, "_cache_root", lambda: tmp_path)
    java = shutil.which("java")
    folder = engines.find_dynamodb_local()
    assert java is not None and folder is not None
    classes = engines.compile_launcher(java, folder / "DynamoDBLocal.jar")
    assert classes.parent == tmp_path / "dynamodb-launcher"
    assert [p.name for p in classes.iterdir()] == [f"{engines.LAUNCHER_CLASS}.class"]
    assert [p.name for p in classes.parent.iterdir()] == [classes.name]  # no half-compiled folder left

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("javac ran again")

    monkeypatch.setattr(engines.subprocess, "run", no_compiling)
    assert engines.compile_launcher(java, folder / "DynamoDBLocal.jar") == classes


def test_missing_jar_names_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(engines.DYNAMODB_LOCAL_ENV, str(tmp_path))
    with pytest.raises(EngineError, match="make setup"):
        engines.start_dynamodb_local(java="java")


def test_fallback_to_moto_is_announced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    engine = engines.start_dynamodb("auto")
    try:
        assert engine.name == "moto"
        client = local_client("dynamodb", engine.endpoint_url)
        assert client.list_tables()["TableNames"] == []
    finally:
        engine.stop()
    assert "Falling back to moto" in capsys.readouterr().err


def test_asking_for_dynamodb_local_never_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    with pytest.raises(EngineError):
        engines.start_dynamodb("dynamodb-local")


def test_moto_counts_configuration_changes_not_reads() -> None:
    engine = engines.start_moto()
    try:
        iam = local_client("iam", engine.endpoint_url)
        logs = local_client("logs", engine.endpoint_url)
        trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        iam.create_role(RoleName="handler", AssumeRolePolicyDocument=trust)
        after_create = engine.generation()
        assert after_create > 0
        iam.get_role(RoleName="handler")
        logs.create_log_group(logGroupName="/aws/lambda/x")
        assert engine.generation() == after_create
        policy = (
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}'
        )
        iam.put_role_policy(RoleName="handler", PolicyName="p", PolicyDocument=policy)
        assert engine.generation() > after_create
    finally:
        engine.stop()


@needs_dynamodb_local
def test_the_engine_starts_from_the_class_archive() -> None:
    """`make setup` builds the archive (built here if missing); the engine's JVM maps it, which Java does only
    when the class path and options match the ones it was dumped with."""
    archive, _ = jvm_archive.build()
    assert archive is not None and archive.is_file()
    with engines.start_dynamodb_local() as engine:
        assert engine.pid is not None
        mapped = {line.split()[-1] for line in Path(f"/proc/{engine.pid}/maps").read_text().splitlines()}
        command = Path(f"/proc/{engine.pid}/cmdline").read_bytes().split(b"\0")
        assert str(archive) in mapped, "the JVM did not map the class archive"
        assert f"-XX:SharedArchiveFile={archive}".encode() in command
        class_path = command[command.index(b"-cp") + 1].decode().split(os.pathsep)
        assert all(Path(part).suffix == ".jar" and Path(part).is_file() for part in class_path), class_path
        client = local_client("dynamodb", engine.endpoint_url, "us-east-1")
        assert client.list_tables()["TableNames"] == []
    java = shutil.which("java")
    assert java is not None and jvm_archive.usable(
        java, engines.JVM_OPTIONS, [Path(p) for p in class_path], archive
    )


@needs_dynamodb_local
def test_an_archive_that_crashes_the_jvm_is_dropped_and_the_engine_starts_without_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A damaged archive (a crash mid-write, a partial copy) kills the JVM at its start (SIGBUS mapping it).
    Stood in for by a `java` that dies whenever it is given an archive: the engine starts once more without
    it, answers, and the archive is removed, so `make` builds a sound one again."""
    real = shutil.which("java")
    assert real is not None
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in -XX:SharedArchiveFile=*) echo "SIGBUS (0x7) mapping" >&2; exit 134;; '
        "esac; done\n"
        f'exec {real} "$@"\n'
    )
    java.chmod(0o755)
    monkeypatch.setattr(engines, "archive_cache", lambda: tmp_path / "cds")
    folder = engines.find_dynamodb_local()
    assert folder is not None
    jars = jvm_archive.class_path(
        folder, engines.compile_launcher(str(java), folder / "DynamoDBLocal.jar"), tmp_path / "cds"
    )
    archive = jvm_archive.archive_path(str(java), engines.JVM_OPTIONS, jars, tmp_path / "cds")
    archive.write_bytes(b"\0" * 4096)
    assert not jvm_archive.usable(real, engines.JVM_OPTIONS, jars, archive)  # what `make` checks
    with engines.start_dynamodb_local(java=str(java)) as engine:
        assert engine.pid is not None
        command = Path(f"/proc/{engine.pid}/cmdline").read_bytes()
        assert b"SharedArchiveFile" not in command
        assert local_client("dynamodb", engine.endpoint_url, "us-east-1").list_tables()["TableNames"] == []
    assert not archive.exists()
