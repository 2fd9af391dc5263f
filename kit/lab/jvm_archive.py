"""DynamoDB Local's class path, and a class-data-sharing archive that makes its JVM start faster.

A JVM spends most of DynamoDB Local's start loading and verifying ~6,000 classes from 120 jars. A CDS archive
(Java 10+, ``-XX:SharedArchiveFile``) holds them already parsed, mapped at start instead: measured on 2
cores, the engine answers after ~1.5 s of CPU instead of ~2.7 s, and a lab's first 200 writes cost ~3.4 s
instead of ~4.8 s. Every lab pays that start, and the test suite starts dozens.

Java archives application classes only from jars, and refuses a class path holding a non-empty directory.
``DynamoDBLocal.jar``'s manifest puts ``.`` (its own folder) on the class path, so the engine runs from:

- the loopback launcher packed into a jar (``launcher_jar``);
- a copy of ``DynamoDBLocal.jar`` whose manifest has no ``Class-Path`` (``plain_jar``);
- the manifest's jars, named one by one in its order (``class_path``). Its other entries, ``.``,
  ``log4j2.xml`` and the native libraries, name nothing the engine loads from the class path: the
  native libraries come through ``java.library.path``.

``make test``, ``make report`` and ``make bench`` build the archive once (``make archive``: ``python -m
kit.lab.jvm_archive``): it starts DynamoDB Local recording the classes it loads, sends it the requests a lab
sends, and dumps those classes. The archive's name is a hash of the JVM, the options and every jar's path,
size and time, so a new Java or DynamoDB Local gets a new one (and the old ones are removed). Each run of
``make`` checks it with ``-Xshare:on`` (~0.2 s) and builds it again if Java cannot map it.

Without an archive the engine starts with its JDK's own class sharing, as before but from jars only. An
archive that does not match its JVM or jars is ignored by Java without a word (``-Xshare:auto``), and the
engine then starts with no class sharing at all, slower than without one; one that is damaged (cut short by a
crash) kills the JVM as it maps it, so the engine, whose JVM died before answering, starts once more without
it and removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from kit.errors import EngineError

MANIFEST = "META-INF/MANIFEST.MF"
ARCHIVE_DIR = "dynamodb-local-cds"


def manifest_class_path(manifest: str) -> list[str]:
    """The entries of a jar manifest's ``Class-Path`` attribute, in order (pure).

    A manifest line holds at most 72 bytes; a longer value continues on lines that start with one space.
    """
    logical: list[str] = []
    for line in _lines(manifest):
        if line.startswith(" ") and logical:
            logical[-1] += line[1:]
        else:
            logical.append(line)
    for line in logical:
        name, _, value = line.partition(":")
        if name.strip().lower() == "class-path":
            return value.split()
    return []


def _lines(manifest: str) -> list[str]:
    """A manifest's physical lines, whatever ends them (CRLF, LF or a bare CR)."""
    return re.split(r"\r\n|\r|\n", manifest)


def jars_of(entries: Sequence[str]) -> list[str]:
    """The class-path entries that are jars (pure): the ones a CDS class path may hold."""
    return [entry for entry in entries if entry.lower().endswith(".jar") and entry not in (".", "")]


def _stamp(path: Path) -> bytes:
    status = path.stat()
    return f"{path.resolve()}\0{status.st_size}\0{status.st_mtime_ns}".encode()


def _publish(write: Path, final: Path) -> None:
    """Give the finished ``write`` its ``final`` name, flushed to disk first; the first process to get there
    wins (a link never replaces a file), so a copy another process already uses never changes under it."""
    with write.open("rb") as written:
        os.fsync(written.fileno())
    with contextlib.suppress(FileExistsError):
        os.link(write, final)
    write.unlink(missing_ok=True)
    if not final.is_file():
        raise OSError(f"{final} was not written")


@contextlib.contextmanager
def _writing(final: Path) -> Iterator[Path]:
    """A new temporary file beside ``final`` for the block to write; published as ``final`` (:func:`_publish`)
    when the block ends without an error, and gone either way."""
    handle, name = tempfile.mkstemp(dir=final.parent, prefix="writing-", suffix=final.suffix)
    os.close(handle)
    work = Path(name)
    try:
        yield work
        _publish(work, final)
    finally:
        work.unlink(missing_ok=True)


def plain_jar(jar: Path, cache: Path) -> Path:
    """A copy of ``jar`` whose manifest has no ``Class-Path``, made once per jar (its path, size and time)."""
    key = hashlib.sha256(_stamp(jar)).hexdigest()[:16]
    target = cache / key / jar.name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (
        _writing(target) as work,  # published after both jars are closed
        zipfile.ZipFile(jar) as source,
        zipfile.ZipFile(work, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for item in source.infolist():
            data = source.read(item)
            if item.filename == MANIFEST:
                data = _without_class_path(data.decode("latin-1")).encode("latin-1")
            copy.writestr(item, data)
    return target


def _without_class_path(manifest: str) -> str:
    kept: list[str] = []
    skipping = False
    for line in _lines(manifest):
        if line.startswith(" "):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.partition(":")[0].strip().lower() == "class-path"
        if not skipping:
            kept.append(line)
    return "\r\n".join(kept)


def launcher_jar(classes: Path) -> Path:
    """The compiled launcher's classes (a folder) packed into a jar beside the folder, once."""
    target = classes.with_suffix(".jar")
    if target.is_file():
        return target
    with _writing(target) as work, zipfile.ZipFile(work, "w", zipfile.ZIP_DEFLATED) as jar:
        for path in sorted(classes.glob("*.class")):
            jar.write(path, path.name)
    return target


def class_path(folder: Path, launcher: Path, cache: Path) -> list[Path]:
    """DynamoDB Local's class path as jars only: the launcher, the plain jar, then the manifest's jars."""
    jar = folder / "DynamoDBLocal.jar"
    try:
        with zipfile.ZipFile(jar) as source:
            manifest = source.read(MANIFEST).decode("latin-1")  # every byte kept, whatever splits a character
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise EngineError(
            f"cannot read {jar}'s manifest ({exc}); reinstall DynamoDB Local with `make setup`."
        ) from exc
    libraries = [folder / entry for entry in jars_of(manifest_class_path(manifest))]
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        cache.chmod(0o700)  # the JVM maps an archive from here unchecked: only this user may write here
        packed = [launcher_jar(launcher), plain_jar(jar, cache)]
    except (OSError, zipfile.BadZipFile) as exc:
        raise EngineError(
            f"cannot write DynamoDB Local's jars in {cache} ({exc}); make that folder writable, "
            "or use the moto engine (--dynamodb moto)."
        ) from exc
    return [*packed, *(path for path in libraries if path.is_file())]


def archive_path(java: str, options: Sequence[str], jars: Sequence[Path], cache: Path) -> Path:
    """Where the archive for this JVM, these options and these jars is kept (it may not exist yet)."""
    parts = [_stamp(Path(java)), *(option.encode() for option in options), *(_stamp(jar) for jar in jars)]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]
    return cache / f"{key}.jsa"


def dump_archive(
    java: str, options: Sequence[str], jars: Sequence[Path], class_list: Path, archive: Path
) -> None:
    """``java -Xshare:dump`` of the classes in ``class_list`` into ``archive``, written whole then renamed."""
    work = archive.with_name(f"dumping-{os.getpid()}-{archive.name}")
    try:
        done = subprocess.run(
            [
                java,
                "-Xshare:dump",
                f"-XX:SharedClassListFile={class_list}",
                f"-XX:SharedArchiveFile={work}",
                *options,
                "-cp",
                os.pathsep.join(str(jar) for jar in jars),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not work.is_file():
            raise EngineError(
                f"java -Xshare:dump could not write {archive.name}: "
                f"{(done.stderr or done.stdout).strip()[-500:] or 'no output'}"
            )
        _publish(work, archive)
    finally:
        work.unlink(missing_ok=True)


def _exercise(endpoint_url: str) -> None:
    """The requests a lab sends DynamoDB Local, so the classes that answer them are recorded too."""
    import boto3
    from botocore.exceptions import ClientError

    from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
    )
    table = "kit-archive-warmup"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "connectionId", "AttributeType": "S"},
            {"AttributeName": "workspaceId", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "workspaceId-index",
                "KeySchema": [{"AttributeName": "workspaceId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.describe_table(TableName=table)
    client.list_tables()
    for index in range(50):
        item = {"connectionId": {"S": f"c{index}"}, "workspaceId": {"S": "w"}, "ttl": {"N": str(index)}}
        client.put_item(TableName=table, Item=item)
    client.get_item(TableName=table, Key={"connectionId": {"S": "c1"}})
    client.query(
        TableName=table,
        IndexName="workspaceId-index",
        KeyConditionExpression="workspaceId = :w",
        ExpressionAttributeValues={":w": {"S": "w"}},
    )
    client.scan(TableName=table, Limit=10)
    client.update_item(
        TableName=table,
        Key={"connectionId": {"S": "c1"}},
        UpdateExpression="SET seen = :s",
        ExpressionAttributeValues={":s": {"BOOL": True}},
    )
    with contextlib.suppress(ClientError):  # the refusals a lab's faults provoke load classes too
        client.put_item(
            TableName=table,
            Item={"connectionId": {"S": "c1"}},
            ConditionExpression="attribute_not_exists(connectionId)",
        )
    with contextlib.suppress(ClientError):
        client.put_item(TableName="kit-archive-missing", Item={"connectionId": {"S": "x"}})
    client.batch_write_item(
        RequestItems={table: [{"DeleteRequest": {"Key": {"connectionId": {"S": f"c{i}"}}}} for i in range(5)]}
    )
    client.delete_item(TableName=table, Key={"connectionId": {"S": "c9"}})
    client.delete_table(TableName=table)


def build(cache: Path | None = None) -> tuple[Path | None, bool]:
    """The archive for this machine's Java and DynamoDB Local (None when either is missing), and whether it
    was built now."""
    from kit.lab import engines

    java = shutil.which("java")
    folder = engines.find_dynamodb_local()
    if java is None or folder is None:
        return None, False
    cache = cache or engines.archive_cache()
    jars = class_path(folder, engines.compile_launcher(java, folder / "DynamoDBLocal.jar"), cache)
    archive = archive_path(java, engines.JVM_OPTIONS, jars, cache)
    if archive.is_file():
        if usable(java, engines.JVM_OPTIONS, jars, archive):
            return archive, False
        archive.unlink()  # damaged (a crash mid-write, a partial copy): built again below
    with tempfile.TemporaryDirectory(prefix="kit-cds-") as work:
        class_list = Path(work) / "classes.lst"
        with engines.start_dynamodb_local(java=java, folder=folder, class_list=class_list) as engine:
            _exercise(engine.endpoint_url)
        dump_archive(java, engines.JVM_OPTIONS, jars, class_list, archive)
    if not usable(java, engines.JVM_OPTIONS, jars, archive):
        archive.unlink(missing_ok=True)
        raise EngineError(f"java cannot map the archive it just wrote, {archive.name}")
    for other in [*cache.glob("*.jsa"), *cache.glob("dumping-*")]:  # other Javas' and jars', or left over
        if other != archive:
            other.unlink(missing_ok=True)
    return archive, True


def usable(java: str, options: Sequence[str], jars: Sequence[Path], archive: Path) -> bool:
    """Whether this JVM maps ``archive`` with these options and jars: ``-Xshare:on`` refuses to start
    otherwise, where the engine's default (``auto``) would go on without it, or crash on a damaged file."""
    try:
        done = subprocess.run(
            [
                java,
                "-Xshare:on",
                f"-XX:SharedArchiveFile={archive}",
                *options,
                "-cp",
                os.pathsep.join(str(jar) for jar in jars),
                "-version",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def main() -> int:
    """``python -m kit.lab.jvm_archive``: build the archive if it is missing or damaged, saying so in one line
    (nothing when it is there, or when there is no Java or no DynamoDB Local to build it for); never fails
    ``make``, since the engine starts without one."""
    started = time.monotonic()
    try:
        archive, built = build()
    except Exception as exc:  # an optional speed-up: any failure is one line, and labs start without it
        said = " ".join(str(exc).split())  # one line, whatever the JVM printed
        print(
            f"DynamoDB Local's class archive was not built ({said}); labs start without it.", file=sys.stderr
        )
        return 0
    if archive is not None and built:  # no Java or no jar: the labs fall back to moto, and say so
        size = archive.stat().st_size / 2**20
        print(
            f"DynamoDB Local's class archive: {archive} ({size:.0f} MB, {time.monotonic() - started:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
