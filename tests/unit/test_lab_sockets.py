"""Reading listening sockets from /proc (kit.lab.sockets): rows as the kernel prints them, by table."""

from __future__ import annotations

import pytest

from kit.lab import sockets

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
TAIL = "00000000:00000000 00:00000000 00000000  1000        0"


def _row(local: str, state: str, inode: int, remote: str = "00000000:0000") -> str:
    return f"   0: {local} {remote} {state} {TAIL} {inode} 1 0000000000000000 100 0 0 10 0"


@pytest.mark.parametrize(
    ("text", "byteorder", "expected"),
    [
        ("0100007F:1F90", "little", ("127.0.0.1", 8080)),
        ("7F000001:1F90", "big", ("127.0.0.1", 8080)),
        ("00000000:0050", "little", ("0.0.0.0", 80)),
        ("0200007F:FFFF", "little", ("127.0.0.2", 65535)),
        ("0101A8C0:0001", "little", ("192.168.1.1", 1)),
        ("00000000000000000000000001000000:A101", "little", ("::1", 41217)),
        ("00000000000000000000000000000001:A101", "big", ("::1", 41217)),
        ("00000000000000000000000000000000:AF4B", "little", ("::", 44875)),
        ("0000000000000000FFFF00000100007F:AF4B", "little", ("::ffff:127.0.0.1", 44875)),
        ("000080FE00000000FF005452A30012FE:0016", "little", ("fe80::5254:ff:fe12:a3", 22)),
    ],
)
def test_decode_endpoint(text: str, byteorder: sockets.ByteOrder, expected: tuple[str, int]) -> None:
    assert sockets.decode_endpoint(text, byteorder) == expected


@pytest.mark.parametrize("text", ["0100007F", "0100007F:", "01007F:1F90", "zz00007F:1F90", ""])
def test_decode_endpoint_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(ValueError):
        sockets.decode_endpoint(text, "little")


def test_listening_inodes_keeps_listen_rows_only() -> None:
    table = "\n".join(
        [
            HEADER,
            _row("0100007F:A101", "0A", 38450),  # LISTEN on 127.0.0.1
            _row("00000000:07E8", "0A", 1078),  # LISTEN on every interface
            _row("0100007F:AF4B", "01", 38524, remote="0100007F:EAF2"),  # ESTABLISHED: not a listener
            _row("0100007F:9BD7", "06", 0),  # TIME_WAIT
            "   9: truncated row",
            "",
        ]
    )
    assert sockets.listening_inodes(table, "little") == {
        38450: ("127.0.0.1", 41217),
        1078: ("0.0.0.0", 2024),
    }


def test_listening_inodes_of_an_empty_table() -> None:
    assert sockets.listening_inodes(HEADER + "\n", "little") == {}
    assert sockets.listening_inodes("", "little") == {}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),  # all of 127.0.0.0/8 is loopback
        ("127.255.255.255", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # an IPv6 socket bound to the IPv4 loopback
        ("0.0.0.0", False),
        ("::", False),
        ("::ffff:0.0.0.0", False),
        ("::ffff:10.0.0.5", False),
        ("10.0.0.5", False),
        ("128.0.0.1", False),
        ("126.255.255.255", False),
        ("::2", False),
        ("fe80::1", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert sockets.is_loopback(host) is expected
    assert sockets.Listener(1, host, 80).loopback is expected


@pytest.mark.parametrize(
    ("stat", "parent"),
    [
        ("1234 (python3) S 1 1234 1234 0 -1 4194560 0", 1),
        ("99 (java) S 1234 99 1 0 -1", 1234),
        ("77 (a) b (c)) R 42 77 77 0", 42),  # a command name with spaces and parentheses
        ("5 () Z 4 5 5", 4),
    ],
)
def test_parent_pid(stat: str, parent: int) -> None:
    assert sockets.parent_pid(stat) == parent


def test_descendants_walks_the_whole_tree_and_nothing_else() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20, 30: 13}
    assert sorted(sockets.descendants(10, parents)) == [10, 11, 12, 13, 30]
    assert sockets.descendants(11, parents) == [11]
    assert sockets.descendants(99, parents) == [99]  # a root that ended still names itself


@pytest.mark.parametrize(
    ("link", "inode"),
    [
        ("socket:[38450]", 38450),
        ("socket:[0]", 0),
        ("pipe:[38450]", None),
        ("anon_inode:[eventpoll]", None),
        ("/dev/null", None),
        ("socket:38450", None),
    ],
)
def test_socket_inode(link: str, inode: int | None) -> None:
    assert sockets.socket_inode(link) == inode


@pytest.mark.parametrize(
    ("listener", "shown"),
    [
        (sockets.Listener(7, "127.0.0.1", 80), "127.0.0.1:80 (pid 7)"),
        (sockets.Listener(7, "::", 8000), "[::]:8000 (pid 7)"),
    ],
)
def test_listener_is_shown_as_host_and_port(listener: sockets.Listener, shown: str) -> None:
    assert str(listener) == shown


def test_the_lab_reaches_its_own_servers_without_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy in the environment (a user's shell, a test that set one for a while) must never carry the lab's
    own loopback requests: urlopen would keep the first call's proxy for the life of the process."""
    import http.server
    import threading
    import urllib.request

    from kit.lab.sockets import open_loopback

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # the discard port: nothing answers there
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with pytest.raises(OSError):  # what urlopen does with that environment
            urllib.request.build_opener().open(url, timeout=2)
        with open_loopback(url, timeout=2) as answer:
            assert answer.status == 204
    finally:
        server.shutdown()
        server.server_close()
