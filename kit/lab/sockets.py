"""Which TCP sockets a process tree listens on, read from Linux's ``/proc``: the lab's loopback-only proof.

The lab promises that nothing it starts listens beyond loopback: its in-process servers (moto, the gateway,
@connections, the DynamoDB front door) and its child processes (the DynamoDB Local JVM, the Lambda workers,
the Next.js stand-in). ``kit.lab.engines`` checks the JVM with this module right after it answers, and the
tests check the whole tree. The parsers are pure (``/proc/net/tcp`` rows, ``/proc/<pid>/stat`` lines) and
tested by tables; the readers around them are thin.

This module must not need root or psutil, and it sees only the reading process's network namespace (the
lab never leaves it). It reads TCP listeners only: the lab has no UDP server.

:func:`open_loopback` is the one way the lab makes an HTTP request to its own parts: never through a proxy.
``urllib.request.urlopen`` would take the proxy settings of the environment at its first call and keep them
for the life of the process, so a shell's ``HTTP_PROXY`` (or a test that set one for a while) would send the
lab's own health checks to a proxy that does not know 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

PROC = Path("/proc")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def open_loopback(request: str | urllib.request.Request, timeout: float) -> Any:
    """``urlopen`` for the lab's own loopback servers, without any proxy (see the module's note)."""
    return _NO_PROXY.open(request, timeout=timeout)


TCP_LISTEN = "0A"  # the kernel's TCP_LISTEN state, as /proc/net/tcp prints it
ByteOrder = Literal["little", "big"]


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket and the process holding it."""

    pid: int
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port} (pid {self.pid})"


def is_loopback(host: str) -> bool:
    """Whether an address is loopback: 127.0.0.0/8, ``::1``, or an IPv4-mapped ``::ffff:127.x.y.z``."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def decode_endpoint(text: str, byteorder: ByteOrder = sys.byteorder) -> tuple[str, int]:
    """``0100007F:1F90`` -> ``("127.0.0.1", 8080)``: an address as ``/proc/net/tcp{,6}`` prints it.

    The kernel prints the address as 32-bit words in the machine's byte order (one word for IPv4, four for
    IPv6) and the port as a plain hexadecimal number.
    """
    address_hex, _, port_hex = text.partition(":")
    if len(address_hex) not in (8, 32) or not port_hex:
        raise ValueError(f"not a /proc/net/tcp address: {text!r}")
    raw = bytes.fromhex(address_hex)
    if byteorder == "little":
        raw = b"".join(raw[start : start + 4][::-1] for start in range(0, len(raw), 4))
    host = ipaddress.ip_address(raw)
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
        return f"::ffff:{host.ipv4_mapped}", int(port_hex, 16)  # one spelling on every Python version
    return str(host), int(port_hex, 16)


def listening_inodes(table: str, byteorder: ByteOrder = sys.byteorder) -> dict[int, tuple[str, int]]:
    """socket inode -> (host, port) of every LISTEN row of a ``/proc/net/tcp`` or ``tcp6`` text."""
    found: dict[int, tuple[str, int]] = {}
    for line in table.splitlines()[1:]:  # the first line is the header
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        found[int(fields[9])] = decode_endpoint(fields[1], byteorder)
    return found


def parent_pid(stat: str) -> int:
    """The parent pid in a ``/proc/<pid>/stat`` line; the command name may hold spaces and parentheses."""
    after_name = stat.rsplit(")", 1)[1].split()
    return int(after_name[1])  # after the name come the state, then the parent pid


def descendants(root: int, parents: Mapping[int, int]) -> list[int]:
    """``root`` and every process below it, given pid -> parent pid (pure)."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(sorted(children.get(pid, ())))
    return tree


def socket_inode(link: str) -> int | None:
    """The inode of a ``socket:[12345]`` fd link; None for anything else."""
    if link.startswith("socket:[") and link.endswith("]"):
        return int(link[len("socket:[") : -1])
    return None


# -- readers (thin) ------------------------------------------------------------------------------------------


def process_tree(root: int | None = None) -> list[int]:
    """``root`` (this process by default) and its descendants, alive now."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = parent_pid((entry / "stat").read_text())
        except (OSError, IndexError, ValueError):  # the process ended while we read
            continue
    return descendants(os.getpid() if root is None else root, parents)


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:  # ended, or not ours to read
        return inodes
    for fd in fds:
        try:
            inode = socket_inode(os.readlink(fd))
        except OSError:
            continue
        if inode is not None:
            inodes.add(inode)
    return inodes


def listeners(pids: Iterable[int]) -> list[Listener]:
    """Every TCP socket that one of ``pids`` listens on (IPv4 and IPv6)."""
    listening: dict[int, tuple[str, int]] = {}
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if path.exists():
            listening |= listening_inodes(path.read_text())
    found = []
    for pid in pids:
        for inode in sorted(_socket_inodes(pid)):
            if inode in listening:
                host, port = listening[inode]
                found.append(Listener(pid, host, port))
    return found


def beyond_loopback(pids: Iterable[int]) -> list[Listener]:
    """The listeners of ``pids`` that are reachable from outside the machine (empty is the promise)."""
    return [listener for listener in listeners(pids) if not listener.loopback]


def can_read() -> bool:
    """Whether this system has the ``/proc`` files this module reads (Linux)."""
    return (PROC / "net" / "tcp").exists() and (PROC / "self" / "fd").exists()
