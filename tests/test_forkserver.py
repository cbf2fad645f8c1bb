"""A kernel forked by grader.forkserver gets the same sandbox as one started as a new interpreter."""

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

from conftest import REPOSITORY
from grader.sandbox import FIRST_UID, LAST_UID, SandboxKernelManager, sandbox_available

# Run in the kernel: what a student's code could find out about its process and surroundings.
PROBE = f"""
import json, os, resource, socket, sys
def open_files():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{{fd}}")
        except FileNotFoundError:  # the descriptor listdir itself used
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            found.append(target)
    return sorted(found)
limits = {{name: resource.getrlimit(getattr(resource, name)) for name in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE")}}
print(json.dumps({{
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": os.getgroups(),
    "pid": os.getpid(),
    "parent": os.getppid(),
    "processes": sorted(name for name in os.listdir("/proc") if name.isdigit()),
    "root": sorted(os.listdir("/")),
    "tmp": sorted(os.listdir("/tmp")),
    "cwd": os.getcwd(),
    "cwd_files": sorted(os.listdir(".")),
    "repository": sorted(os.listdir({str(REPOSITORY)!r})) if os.path.isdir({str(REPOSITORY)!r}) else None,
    "solution": os.path.exists({str(REPOSITORY / "solution.py")!r}),
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "namespaces": {{kind: os.readlink(f"/proc/self/ns/{{kind}}") for kind in ("ipc", "mnt", "net", "pid")}},
    "open_files": open_files(),
    "limits": limits,
    "home": os.environ.get("HOME"),
    "numpy_loaded_before": "numpy" in sys.modules,
    "grader_loaded": sorted(name for name in sys.modules if name == "grader" or name.startswith("grader.")),
}}))
"""


def kernel_view(folder, fork_kernels):
    """Run PROBE in a sandboxed kernel with its working folder `folder`; return what it printed, parsed."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    config = Config({"SandboxKernelManager": {"fork_kernels": fork_kernels}})
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        kernel_manager_class=SandboxKernelManager,
        config=config,
        timeout=60,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    output = notebook.cells[0].outputs[0]
    assert output.output_type == "stream", output
    return json.loads(output.text)


def visible_in_repository():
    """Return the repository's entries a sandboxed kernel may see: grader/ (for grader/kernel/) and a virtual environment inside it."""
    visible = {"grader"}
    environment = Path(sys.prefix).resolve()
    if environment.is_relative_to(REPOSITORY):
        visible.add(environment.relative_to(REPOSITORY).parts[0])
    return sorted(visible)


@pytest.mark.skipif(not sandbox_available(), reason="the sandbox needs root, unshare and setpriv")
def test_forked_kernel_sees_the_same_sandbox(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "utils.py").write_text("X = 1\n")

    spawned = kernel_view(folder, fork_kernels=False)
    forked = kernel_view(folder, fork_kernels=True)

    for view in (spawned, forked):
        assert FIRST_UID <= view["uid"] <= LAST_UID
        assert view["gid"] == view["uid"]
        assert view["groups"] == []
        assert view["pid"] == 1
        assert view["processes"] == ["1"]
        assert view["cwd_files"] == ["utils.py"]
        assert view["repository"] == visible_in_repository()
        assert view["solution"] is False
        assert view["interfaces"] == ["lo"]
        # SysV shared memory would otherwise carry data from one student to the next.
        assert all(view["namespaces"][kind] != os.readlink(f"/proc/self/ns/{kind}") for kind in view["namespaces"])
        # Not the grader's stdout and stderr, which may be its log files.
        assert view["open_files"] == []
    # Each kernel has a user id and a socket folder (/tmp/bpk-...) of its own; the rest must be the same.
    for view in (spawned, forked):
        del view["uid"], view["gid"], view["namespaces"]
        view["tmp"] = ["bpk-" if name.startswith("bpk-") else name for name in view["tmp"]]
    # The fork server imported numpy before the fork; a new interpreter had not when it ran PROBE.
    assert (spawned.pop("numpy_loaded_before"), forked.pop("numpy_loaded_before")) == (False, True)
    assert forked == spawned
    assert forked["grader_loaded"] == []
