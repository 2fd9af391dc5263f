"""The report's kernels talk over Unix sockets in a private folder (kit.report.ipc_kernel_manager): no TCP
port for two kernels to race for, nothing on the network, no unencrypted-TCP warning."""

from __future__ import annotations

from pathlib import Path

from kit.report import ipc_kernel_manager


def test_kernels_use_unix_sockets_in_the_folder_they_are_given(tmp_path: Path) -> None:
    manager = ipc_kernel_manager(tmp_path)(kernel_name="python3")
    assert manager.transport == "ipc"
    assert Path(manager.connection_file).parent == tmp_path
    # The sockets are named after the connection file, so they land in the folder too (never the cwd).
    assert Path(manager.ip).parent == tmp_path
    info = manager.get_connection_info()
    assert info["transport"] == "ipc"


def test_each_kernel_gets_its_own_connection_file(tmp_path: Path) -> None:
    kind = ipc_kernel_manager(tmp_path)
    assert kind(kernel_name="python3").connection_file != kind(kernel_name="python3").connection_file
