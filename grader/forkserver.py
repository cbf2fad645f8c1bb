"""Start each grading kernel as a fork of a process that has already imported numpy, torch and ipykernel.

A new kernel normally costs an interpreter start and the imports of ipykernel, numpy and
torch, more than a second of CPU time per submission. The fork server pays these once
per grading process; every kernel is then a fresh fork of it. The server never runs a
cell, so no student's code can leave anything behind for the next one: each student's
changes to numpy, torch, `utils` or anything else die with that student's process.

Use it with `python -m grader grade --fork-kernels`, which puts ForkingExecute in place of
nbgrader's Execute preprocessor (use_forked_kernels). The kernel gets the environment,
working folder and command-line options that jupyter_client would give a new process.

Per-kernel setup such as resource limits or a change of user goes into
ForkingKernelManager.child_setup: functions that the forked child calls before it becomes
the kernel, where a normal launch would run them between fork and exec.
"""

import atexit
import importlib
import json
import logging
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from traitlets import List, Unicode

from grader import REPOSITORY

log = logging.getLogger(__name__)

PRELOADED_MODULES = ("numpy", "torch", "ipykernel.kernelapp")

# How long a client waits for a new server to import PRELOADED_MODULES and listen.
SERVER_START_SECONDS = 120


# The server side, run as `python -m grader.forkserver SOCKET`.


def serve(socket_path):
    """Import PRELOADED_MODULES, then fork one kernel per request on the Unix socket until the parent exits."""
    for name in PRELOADED_MODULES:
        importlib.import_module(name)
    # The paths a kernel's interpreter would have without this module's folder and PYTHONPATH,
    # which each request sets anew.
    server_python_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    base_path = [path for path in sys.path[1:] if path not in server_python_path]

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen()
    listener.settimeout(1.0)
    parent = os.getppid()
    children = set()
    while os.getppid() == parent:
        reap(children)
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        with connection:
            try:
                connection.settimeout(None)
                request = json.loads(receive(connection))
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    connection.close()
                    become_kernel(request, base_path)
                children.add(pid)
                connection.sendall(json.dumps({"pid": pid}).encode())
            except (OSError, ValueError) as error:
                # A client that went away or sent no valid request costs only its own kernel.
                print(f"grader.forkserver: request failed: {type(error).__name__}: {error}", file=sys.stderr)
    # The grading process is gone, and with it every client of these kernels.
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def receive(connection):
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def reap(children):
    """Collect the exit status of finished kernels, so that none stays a zombie."""
    for pid in list(children):
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = pid
        if finished:
            children.discard(pid)


def become_kernel(request, base_path):
    """Turn this forked child into the requested IPython kernel; never return.

    The child leaves the server's session, takes the kernel's working folder and
    environment, and runs the setup hooks. It then takes the kernel's sys.path, drops the
    grader package from sys.modules and reseeds numpy's global generator, which a new
    interpreter seeds from the OS. Last, it starts ipykernel.
    NOTE: all forks share the server's hash seed for str, where each new interpreter
    would draw its own, so the iteration order of a set of strings repeats across kernels.
    """
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for hook in request["setup"]:
            module, _, function = hook.partition(":")
            getattr(importlib.import_module(module), function)(request)

        python_path = [path for path in request["env"].get("PYTHONPATH", "").split(os.pathsep) if path]
        sys.path[:] = python_path + base_path
        for name in [name for name in sys.modules if name == "grader" or name.startswith("grader.")]:
            del sys.modules[name]
        importlib.import_module("numpy").random.seed()
        # ipykernel read JPY_PARENT_PID when the server imported it, so the option sets the
        # parent whose end also ends this kernel.
        parent = f"--IPKernelApp.parent_handle={request['env']['JPY_PARENT_PID']}"
        sys.argv = ["ipykernel_launcher", *request["argv"][3:], parent]

        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    except BaseException:  # noqa: BLE001 (the child must never return into the server's loop)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# The client side, in the grading process.


def is_ipykernel_command(command):
    return len(command) >= 3 and command[1:3] == ["-m", "ipykernel_launcher"]


class ForkedKernelProcess:
    """The parts of subprocess.Popen that jupyter_client uses, for a kernel forked by the server.

    The kernel is the server's child, not this process's, so its end is seen through a
    Linux pidfd and its exit status is not known: returncode is 0 once it has ended.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None
            self.returncode = 0

    def poll(self):
        return self.wait(timeout=0) if self.returncode is None else self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            readable, _, _ = select.select([self._pidfd], [], [], timeout)
            if not readable:
                if timeout:
                    raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
                return None
            os.close(self._pidfd)
            self.returncode = 0
        return self.returncode

    def send_signal(self, signum):
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """The fork server of this process, started with the environment of the first kernel it is asked for."""

    def __init__(self, environment):
        self.folder = tempfile.mkdtemp(prefix="grader-forkserver-")
        self.socket_path = os.path.join(self.folder, "socket")
        environment = {key: value for key, value in environment.items() if key != "JPY_PARENT_PID"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.forkserver", self.socket_path], cwd=REPOSITORY, env=environment
        )
        atexit.register(self.stop)
        log.debug("Started the kernel fork server %d on %s", self.process.pid, self.socket_path)

    def fork_kernel(self, argv, env, cwd, setup):
        """Ask the server for a kernel; return its ForkedKernelProcess."""
        request = {"argv": argv, "env": {**env, "JPY_PARENT_PID": str(self.process.pid)}, "cwd": str(cwd), "setup": setup}
        with self.connect() as connection:
            connection.sendall(json.dumps(request).encode())
            connection.shutdown(socket.SHUT_WR)
            reply = json.loads(receive(connection))
        return ForkedKernelProcess(reply["pid"])

    def connect(self):
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the kernel fork server exited with status {self.process.returncode}")
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(self.socket_path)
                return connection
            except (FileNotFoundError, ConnectionRefusedError):
                connection.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        pathlib.Path(self.socket_path).unlink(missing_ok=True)
        os.rmdir(self.folder)


_server = None


def fork_server(environment):
    """Return this process's fork server, started on first use."""
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = ForkServer(environment)
    return _server


class ForkProvisioner(LocalProvisioner):
    """Launch ipykernel commands through the fork server, any other kernel command as LocalProvisioner does."""

    async def launch_kernel(self, cmd, **kwargs):
        if not is_ipykernel_command(cmd):
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        cwd = kwargs.get("cwd") or os.getcwd()
        self.process = fork_server(env).fork_kernel(cmd, env, cwd, list(self.parent.child_setup))
        # The child calls setsid, so its process group, which interrupts go to, is its pid.
        self.pid = self.pgid = self.process.pid
        self.cwd = cwd
        return self.connection_info


class ForkingKernelManager(AsyncKernelManager):
    """A kernel manager whose ipykernel kernels are forks of a pre-imported server."""

    child_setup = List(
        Unicode(),
        help="Functions, as 'module:function', that the forked child calls with the launch request "
        "(a dict with argv, env, cwd) before it becomes the kernel: the place for per-kernel limits.",
    ).tag(config=True)

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


class ForkingExecute(Execute):
    """nbgrader's Execute preprocessor, with kernels from the fork server; it reads Execute's settings."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", ForkingKernelManager)
        super().__init__(*args, **kwargs)


def use_forked_kernels(config):
    """Make nbgrader autograde in `config` run its notebooks in forked kernels.

    NOTE: this swaps the whole list for nbgrader's defaults, so grader.execute's
    GradingExecute and its sandboxed kernels are not used; see --fork-kernels.
    """
    preprocessors = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [ForkingExecute if p is Execute else p for p in preprocessors]


if __name__ == "__main__":
    serve(sys.argv[1])
