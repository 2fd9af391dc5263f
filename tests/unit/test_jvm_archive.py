"""DynamoDB Local's class path as jars only, and where its class archive is kept (kit.lab.jvm_archive).

Pure parts by table; the jar copies on small jars written here. That the engine really starts from the
archive (it is mapped into the JVM) is in tests/integration/test_engines.py.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from kit.errors import EngineError
from kit.lab import jvm_archive

LONG = "Class-Path: . log4j2.xml DynamoDBLocal_lib/a-1.0.jar DynamoDBLocal_lib/b-2.0.jar"


def _wrap(line: str, width: int = 72) -> str:
    """A manifest line as jar tools write it: 72 bytes, then continuation lines starting with a space."""
    parts = [line[:width]]
    rest = line[width:]
    while rest:
        parts.append(" " + rest[: width - 1])
        rest = rest[width - 1 :]
    return "\r\n".join(parts)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("Manifest-Version: 1.0\r\nClass-Path: a.jar b.jar\r\n", ["a.jar", "b.jar"]),
        (
            f"Manifest-Version: 1.0\r\n{_wrap(LONG)}\r\nMain-Class: x.Y\r\n",
            [".", "log4j2.xml", "DynamoDBLocal_lib/a-1.0.jar", "DynamoDBLocal_lib/b-2.0.jar"],
        ),
        ("Manifest-Version: 1.0\nclass-path: lower.jar\n", ["lower.jar"]),  # names are case-insensitive
        ("Manifest-Version: 1.0\rClass-Path: cr.jar\r", ["cr.jar"]),  # old Mac line ends
        ("Manifest-Version: 1.0\r\nMain-Class: x.Y\r\n", []),
        ("Class-Path:\r\n", []),
        ("", []),
        # A continuation of another attribute is not the class path's.
        ("Bundle-Description: a b\r\n c.jar\r\nClass-Path: d.jar\r\n", ["d.jar"]),
    ],
)
def test_manifest_class_path(manifest: str, expected: list[str]) -> None:
    assert jvm_archive.manifest_class_path(manifest) == expected


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([".", "log4j2.xml", "lib/a.jar", "lib/B.JAR"], ["lib/a.jar", "lib/B.JAR"]),
        (["lib/libsqlite4java-linux-amd64.so", "lib/x.dll", "lib/y.dylib"], []),
        (["a.jar", "a.jar.bak", "jar"], ["a.jar"]),
        ([], []),
    ],
)
def test_only_jars_go_on_the_class_path(entries: list[str], expected: list[str]) -> None:
    assert jvm_archive.jars_of(entries) == expected


def _jar(path: Path, manifest: str, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr(jvm_archive.MANIFEST, manifest)
        for name, data in files.items():
            jar.writestr(name, data)
    return path


def _dynamodb_local(folder: Path) -> Path:
    lib = folder / "DynamoDBLocal_lib"
    lib.mkdir(parents=True)
    for name in ("b-2.0.jar", "a-1.0.jar"):
        _jar(lib / name, "Manifest-Version: 1.0\r\n", {})
    (lib / "libsqlite4java-linux-amd64.so").write_bytes(b"\x7fELF")
    manifest = (
        "Manifest-Version: 1.0\r\nMain-Class: com.example.Server\r\n"
        + _wrap(
            "Class-Path: . log4j2.xml DynamoDBLocal_lib/b-2.0.jar DynamoDBLocal_lib/missing-3.0.jar "
            "DynamoDBLocal_lib/libsqlite4java-linux-amd64.so DynamoDBLocal_lib/a-1.0.jar"
        )
        + "\r\nBundle-Description: kept\r\n"
    )
    return _jar(folder / "DynamoDBLocal.jar", manifest, {"com/example/Server.class": b"\xca\xfe\xba\xbe"})


def test_the_plain_jar_is_the_jar_without_its_class_path(tmp_path: Path) -> None:
    jar = _dynamodb_local(tmp_path / "ddb")
    plain = jvm_archive.plain_jar(jar, tmp_path / "cache")
    assert plain.name == "DynamoDBLocal.jar"  # bench.processes knows the engine by this name
    with zipfile.ZipFile(jar) as original, zipfile.ZipFile(plain) as copy:
        assert original.namelist() == copy.namelist()
        assert copy.read("com/example/Server.class") == b"\xca\xfe\xba\xbe"
        manifest = copy.read(jvm_archive.MANIFEST).decode()
    assert jvm_archive.manifest_class_path(manifest) == []
    assert "Main-Class: com.example.Server" in manifest and "Bundle-Description: kept" in manifest
    assert "a-1.0.jar" not in manifest  # no continuation line of the class path left behind
    # Made once: a second call returns the same file untouched, and nothing half-written is left.
    stamp = plain.stat().st_mtime_ns
    assert jvm_archive.plain_jar(jar, tmp_path / "cache") == plain
    assert plain.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in plain.parent.iterdir()) == ["DynamoDBLocal.jar"]


def test_a_changed_jar_gets_a_new_plain_copy(tmp_path: Path) -> None:
    jar = _dynamodb_local(tmp_path / "ddb")
    first = jvm_archive.plain_jar(jar, tmp_path / "cache")
    _jar(jar, "Manifest-Version: 1.0\r\nClass-Path: other.jar\r\n", {"x.class": b"1"})
    second = jvm_archive.plain_jar(jar, tmp_path / "cache")
    assert second != first
    with zipfile.ZipFile(second) as copy:
        assert copy.namelist() == [jvm_archive.MANIFEST, "x.class"]


def test_the_class_path_is_the_launcher_the_plain_jar_then_the_manifests_jars_in_order(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ddb"
    _dynamodb_local(folder)
    launcher = tmp_path / "launcher" / "0123abcd"
    launcher.mkdir(parents=True)
    (launcher / "LoopbackDynamoDBLocal.class").write_bytes(b"\xca\xfe")
    jars = jvm_archive.class_path(folder, launcher, tmp_path / "cache")
    assert jars[0] == launcher.with_suffix(".jar")
    with zipfile.ZipFile(jars[0]) as packed:
        assert packed.namelist() == ["LoopbackDynamoDBLocal.class"]
    assert jars[1].parent.parent == tmp_path / "cache" and jars[1].name == "DynamoDBLocal.jar"
    # ".", log4j2.xml and the native library are left out, and so is a jar the manifest names but that
    # is not there (the JVM skips it too); the order is the manifest's.
    assert jars[2:] == [folder / "DynamoDBLocal_lib/b-2.0.jar", folder / "DynamoDBLocal_lib/a-1.0.jar"]
    assert all(path.suffix == ".jar" and path.is_file() for path in jars)


def test_a_jar_without_a_manifest_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "ddb"
    folder.mkdir()
    with zipfile.ZipFile(folder / "DynamoDBLocal.jar", "w") as jar:
        jar.writestr("x.class", b"1")
    with pytest.raises(EngineError, match=r"DynamoDBLocal\.jar's manifest .*make setup") as caught:
        jvm_archive.class_path(folder, tmp_path, tmp_path / "cache")
    assert "\n" not in str(caught.value)
    (folder / "DynamoDBLocal.jar").write_bytes(b"not a zip")
    with pytest.raises(EngineError, match="make setup"):
        jvm_archive.class_path(folder, tmp_path, tmp_path / "cache")


def test_the_archive_is_named_by_the_jvm_the_options_and_every_jar(tmp_path: Path) -> None:
    java = tmp_path / "java"
    java.write_bytes(b"jvm")
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"jar")
    cache = tmp_path / "cache"
    name = jvm_archive.archive_path(str(java), ["-XX:+UseSerialGC"], jars, cache)
    assert name.parent == cache and name.suffix == ".jsa"
    assert jvm_archive.archive_path(str(java), ["-XX:+UseSerialGC"], jars, cache) == name
    others = {
        jvm_archive.archive_path(str(java), ["-XX:+UseG1GC"], jars, cache),
        jvm_archive.archive_path(str(java), ["-XX:+UseSerialGC"], jars[::-1], cache),
        jvm_archive.archive_path(str(java), ["-XX:+UseSerialGC"], jars[:1], cache),
    }
    os.utime(jars[1], ns=(1, 1))  # a jar replaced in place: same path, another time
    others.add(jvm_archive.archive_path(str(java), ["-XX:+UseSerialGC"], jars, cache))
    java.write_bytes(b"another jvm")
    others.add(jvm_archive.archive_path(str(java), ["-XX:+UseSerialGC"], jars[:1], cache))
    assert name not in others and len(others) == 5


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"])
def test_the_class_path_is_dropped_whatever_ends_the_lines(end: str) -> None:
    manifest = end.join(
        ["Manifest-Version: 1.0", *_wrap(LONG).split("\r\n"), "Main-Class: x.Y", " continued", "", ""]
    )
    rewritten = jvm_archive._without_class_path(manifest)
    assert jvm_archive.manifest_class_path(rewritten) == []
    lines = rewritten.split("\r\n")
    assert lines[:3] == ["Manifest-Version: 1.0", "Main-Class: x.Y", " continued"]
    assert all(len(line.encode()) <= 72 for line in lines)  # the jar format's limit, kept


def test_a_copy_made_by_another_process_first_is_kept(tmp_path: Path) -> None:
    """Two processes copying at once: the first to finish wins and the second's copy is dropped, so a file
    an engine (and an archive's name) already depends on never changes under it."""
    final = tmp_path / "final.jar"
    final.write_bytes(b"first")
    second = tmp_path / "second.jar"
    second.write_bytes(b"second")
    jvm_archive._publish(second, final)
    assert final.read_bytes() == b"first" and not second.exists()
    third = tmp_path / "third.jar"
    third.write_bytes(b"third")
    jvm_archive._publish(third, tmp_path / "new.jar")
    assert (tmp_path / "new.jar").read_bytes() == b"third" and not third.exists()


def test_a_cache_that_cannot_be_written_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "ddb"
    _dynamodb_local(folder)
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(EngineError, match=r"cannot write DynamoDB Local's jars in .*cache.*moto") as caught:
        jvm_archive.class_path(folder, tmp_path / "launcher", blocked)
    assert "\n" not in str(caught.value)


def test_the_cache_is_this_users_alone(tmp_path: Path) -> None:
    folder = tmp_path / "ddb"
    _dynamodb_local(folder)
    launcher = tmp_path / "launcher" / "0123abcd"
    launcher.mkdir(parents=True)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    jvm_archive.class_path(folder, launcher, cache)
    assert cache.stat().st_mode & 0o777 == 0o700
