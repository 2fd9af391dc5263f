"""Which runtimes the lab runs, and what the machine must have for them (a table of cases)."""

from __future__ import annotations

import pytest

from kit.errors import ConfigurationError
from kit.lab import lambda_runtimes

FAMILIES = [
    ("python3.11", "python"),
    ("python3.9", "python"),
    ("python3.13", "python"),
    ("nodejs18.x", "node"),
    ("nodejs20.x", "node"),
    ("nodejs22.x", "node"),
    ("nodejs16.x", None),  # deprecated: the lab does not pretend to run it
    ("nodejs24.x", None),
    ("nodejs20", None),
    ("python3", None),
    ("python3.x", None),
    ("Python3.11", None),
    ("java17", None),
    ("provided.al2023", None),
    ("", None),
]


@pytest.mark.parametrize(("runtime", "family"), FAMILIES)
def test_each_runtime_has_its_family_or_none(runtime: str, family: str | None) -> None:
    assert lambda_runtimes.family(runtime) == family
    refusal = lambda_runtimes.refusal("fn", runtime)
    if family is None:
        assert refusal is not None and "Function fn" in refusal and runtime in refusal
        assert "nodejs20.x" in refusal  # it says what the lab can run
    else:
        assert refusal is None


@pytest.mark.parametrize(("runtime", "major"), [("nodejs18.x", 18), ("nodejs20.x", 20), ("nodejs22.x", 22)])
def test_node_runtimes_name_their_major_version(runtime: str, major: int) -> None:
    assert lambda_runtimes.node_major(runtime) == major


def test_python_has_no_node_major() -> None:
    assert lambda_runtimes.node_major("python3.12") is None


@pytest.mark.parametrize(
    ("runtime", "node_on_path", "missing"),
    [
        ("nodejs20.x", None, True),
        ("nodejs20.x", "/usr/bin/node", False),
        ("python3.12", None, False),  # Python runs on the lab's own interpreter
        ("java17", None, False),  # not a tool problem: refusal() says so
    ],
)
def test_missing_tool_is_node_only(runtime: str, node_on_path: str | None, missing: bool) -> None:
    asked: list[str] = []

    def which(name: str) -> str | None:
        asked.append(name)
        return node_on_path

    problem = lambda_runtimes.missing_tool(runtime, which)
    assert (problem is not None) == missing
    if missing:
        assert problem is not None and "node" in problem and runtime in problem and "install" in problem
        assert asked == ["node"]


# -- how a Node.js function's process is started ---------------------------------------------------------------

NODE_20 = lambda_runtimes.NodeMachine(
    "/usr/bin/node",
    "20.20.2",
    frozenset({"--experimental-require-module", "--experimental-detect-module", "--experimental-vm-modules"}),
)
NODE_18 = lambda_runtimes.NodeMachine("/usr/bin/node", "18.19.0", frozenset({"--experimental-vm-modules"}))


@pytest.mark.parametrize(
    ("memory_mb", "semi", "old"),
    [(128, 6, 116), (129, 6, 117), (1024, 51, 922), (10240, 512, 9216), (200, 10, 180), (219, 10, 198)],
)
def test_the_heap_is_sized_from_the_memory_as_the_bootstrap_does(memory_mb: int, semi: int, old: int) -> None:
    arguments = lambda_runtimes.node_arguments("nodejs20.x", memory_mb, NODE_20)
    assert arguments[:3] == ["--expose-gc", "--max-http-header-size", "81920"]
    assert arguments[3:5] == [f"--max-semi-space-size={semi}", f"--max-old-space-size={old}"]


@pytest.mark.parametrize(
    ("runtime", "machine", "node_options", "disabled"),
    [
        ("nodejs20.x", NODE_20, "", ["--no-experimental-require-module"]),
        ("nodejs22.x", NODE_20, "", ["--no-experimental-require-module", "--no-experimental-detect-module"]),
        ("nodejs18.x", NODE_20, "", ["--no-experimental-require-module", "--no-experimental-detect-module"]),
        ("nodejs22.x", NODE_18, "", []),  # this node has neither feature: nothing to switch off
        # The function turns a feature back on in NODE_OPTIONS: Lambda's flag is left out.
        ("nodejs22.x", NODE_20, "--experimental-require-module", ["--no-experimental-detect-module"]),
        ("nodejs20.x", NODE_20, "--max-old-space-size=64 --experimental-require-module", []),
        ("nodejs20.x", NODE_20, "--experimental-require-modules", ["--no-experimental-require-module"]),
    ],
)
def test_features_lambda_switches_off(
    runtime: str, machine: lambda_runtimes.NodeMachine, node_options: str, disabled: list[str]
) -> None:
    assert lambda_runtimes.node_arguments(runtime, 128, machine, node_options)[5:] == disabled


@pytest.mark.parametrize(
    ("output", "version", "flags"),
    [
        ('{"version": "20.20.2", "flags": ["--experimental-require-module"]}\n', "20.20.2", 1),
        ('{"version": "22.1.0", "flags": []}', "22.1.0", 0),
        ('{"version": "18.0.0"}', "18.0.0", 0),
    ],
)
def test_node_machine_reads_the_probe(output: str, version: str, flags: int) -> None:
    machine = lambda_runtimes.node_machine("/opt/node/bin/node", output)
    assert (machine.version, len(machine.flags), machine.executable) == (version, flags, "/opt/node/bin/node")
    assert machine.major == int(version.split(".", maxsplit=1)[0])


@pytest.mark.parametrize(
    "output", ["", "v20.1.0", "{}", '{"version": "x.1"}', '{"version": 20, "flags": 3}', "[]"]
)
def test_node_machine_refuses_what_is_not_nodes_answer(output: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^/bin/fake did not answer like Node\.js .*try again\.$"):
        lambda_runtimes.node_machine("/bin/fake", output)


@pytest.mark.parametrize(
    ("runtime", "version", "said"),
    [
        ("nodejs20.x", "20.20.2", False),
        ("nodejs20.x", "20.0.0", False),
        ("nodejs20.x", "22.3.0", True),
        ("nodejs22.x", "20.20.2", True),
        ("nodejs18.x", "19.9.0", True),
        ("python3.12", "20.20.2", False),
    ],
)
def test_a_differing_major_version_is_said(runtime: str, version: str, said: bool) -> None:
    line = lambda_runtimes.version_mismatch(runtime, lambda_runtimes.NodeMachine("/usr/bin/node", version))
    assert (line is not None) == said
    if line is not None:
        assert runtime in line and version in line and "\n" not in line
