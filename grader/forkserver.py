"""Start each grading kernel as a fork of a process that has already imported numpy, torch and ipykernel.

A new kernel normally costs an interpreter start and the imports of ipykernel, numpy and
torch, more than a second of CPU time per submission. The fork server pays these once
per grading process; every kernel is then a fresh fork of it. The server never runs a
cell, so no student's code can leave anything behind for the next one: each student's
changes to numpy, torch, `utils` or anything else die with that student's process.

grader.sandbox's kernel manager uses it when its fork_kernels setting is on, which the
pipeline turns on unless given --no-fork-kernels. The manager sends the kernel's command
line, environment and working folder, and the options it would otherwise give
grader/jail.py. Each request gets two processes:

- a monitor, the server's child, which enters a new PID namespace (for its children)
  and waits for the kernel. It writes the kernel's exit status to a file the grading
  process reads, since the kernel is not that process's child. Ending the monitor ends
  the kernel.
- the kernel, the monitor's child and PID 1 of the new namespace. It enters new mount,
  network and IPC namespaces, and grader.jail moves it into the sandbox's root folder, sets
  the limits and drops to the kernel's user, just as for a kernel started by `unshare`.
  It then starts ipykernel.
"""

import atexit
import importlib
import json
import logging
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

from jupyter_client.provisioning import LocalProvisioner

from grader import REPOSITORY, jail

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
    children = {}  # the monitors' process ids and the sandbox folders of their kernels
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
                sandbox = jail_arguments(request)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    connection.close()
                    become_kernel(request, sandbox, base_path)
                children[pid] = sandbox.writable if sandbox else []
                connection.sendall(json.dumps({"pid": pid}).encode())
            except (OSError, ValueError) as error:
                # A client that went away or sent no valid request costs only its own kernel.
                print(f"grader.forkserver: request failed: {type(error).__name__}: {error}", file=sys.stderr)
    # The grading process is gone, and with it every client of these kernels. When it was
    # killed, it could not remove the kernels' sandbox folders or this server's folder.
    for pid, folders in children.items():
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)


def jail_arguments(request):
    """Parse a request's grader/jail.py options; return None for a request without them.

    Raises:
        ValueError: if the options are invalid.
    """
    if request["jail"] is None:
        return None
    try:
        return jail.parse_arguments([*request["jail"], "--", *request["argv"]])
    except SystemExit as error:
        raise ValueError(f"invalid jail options: {request['jail']}") from error


def receive(connection):
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def reap(children):
    """Collect the exit status of finished monitors, so that none stays a zombie."""
    for pid in list(children):
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = pid
        if finished:
            del children[pid]


def become_kernel(request, sandbox, base_path):
    """Turn this forked child into the monitor of a new kernel process; never return."""
    try:
        os.setsid()
        if request["namespaces"]:
            jail.unshare(jail.CLONE_NEWPID)
        kernel = os.fork()
    except BaseException:  # noqa: BLE001 (the child must never return into the server's loop)
        traceback.print_exc()
        exit_now(1)
    if kernel == 0:
        # NOTE: the kernel inherits serve()'s frames, so student code can read their locals
        # (the server's socket path, the other monitors' ids), though not reach the socket.
        exit_now(run_kernel(request, sandbox, base_path))
    # Interrupts sent to the kernel's process group are for the kernel alone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, status = os.waitpid(kernel, 0)
    with open(request["status_file"], "w") as status_file:
        status_file.write(str(os.waitstatus_to_exitcode(status)))
    exit_now(0)


def run_kernel(request, sandbox, base_path):
    """Set this process up as the requested IPython kernel and run it; return its exit status.

    The process dies with its monitor, enters the namespaces the request sets and the
    jail that `sandbox` (jail_arguments' result) describes, and takes the kernel's working
    folder, environment and sys.path. It drops the grader package from sys.modules and
    reseeds numpy's global generator, which a new interpreter seeds from the OS. Last, it
    starts ipykernel.
    NOTE: all forks share the server's hash seed for str, where each new interpreter
    would draw its own, so the iteration order of a set of strings repeats across kernels.
    """
    try:
        jail.libc.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        if request["namespaces"]:
            jail.unshare(jail.CLONE_NEWNS | jail.CLONE_NEWNET | jail.CLONE_NEWIPC)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if sandbox is not None:
            jail.enter(sandbox)

        python_path = [path for path in request["env"].get("PYTHONPATH", "").split(os.pathsep) if path]
        sys.path[:] = python_path + base_path
        for name in [name for name in sys.modules if name == "grader" or name.startswith("grader.")]:
            del sys.modules[name]
        importlib.import_module("numpy").random.seed()
        # The kernel ends with its monitor (PR_SET_PDEATHSIG above and in jail.enter).
        # ipykernel read JPY_PARENT_PID when the server imported it, so the option gives
        # the parent that keeps it from printing its connection details, as a kernel
        # without one does.
        parent = f"--IPKernelApp.parent_handle={request['env']['JPY_PARENT_PID']}"
        sys.argv = ["ipykernel_launcher", *request["argv"][3:], parent]

        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        return 0
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    except BaseException:  # noqa: BLE001 (the child must never return into the server's loop)
        traceback.print_exc()
        return 1


def exit_now(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# The client side, in the grading process.


def is_ipykernel_command(command):
    return len(command) >= 3 and command[1:3] == ["-m", "ipykernel_launcher"]


class ForkedKernelProcess:
    """The parts of subprocess.Popen that jupyter_client uses, for a kernel forked by the server.

    `pid` is the kernel's monitor, the server's child, not this process's; its end is seen
    through a Linux pidfd. returncode is then the kernel's exit status, which the monitor
    wrote to `status_file`, or 0 when the monitor was killed before it could.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid, status_file):
        self.pid = pid
        self.status_file = pathlib.Path(status_file)
        self.returncode = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None
            self._finish()

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
            self._finish()
        return self.returncode

    def _finish(self):
        try:
            self.returncode = int(self.status_file.read_text())
        except (FileNotFoundError, ValueError):
            self.returncode = 0
        self.status_file.unlink(missing_ok=True)

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
        # Only root (the grader) can enter this folder, so a sandboxed kernel cannot touch
        # the exit status files its monitor writes here.
        self.folder = tempfile.mkdtemp(prefix="grader-forkserver-")
        self.socket_path = os.path.join(self.folder, "socket")
        environment = {key: value for key, value in environment.items() if key != "JPY_PARENT_PID"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.forkserver", self.socket_path], cwd=REPOSITORY, env=environment
        )
        atexit.register(self.stop)
        log.debug("Started the kernel fork server %d on %s", self.process.pid, self.socket_path)

    def fork_kernel(self, argv, env, cwd, jail_options=None, namespaces=False):
        """Ask the server for a kernel; return its ForkedKernelProcess.

        `jail_options` are grader/jail.py's options for the kernel (None: none). With
        `namespaces` true, the kernel gets new PID, mount, network and IPC namespaces.
        """
        status_file = os.path.join(self.folder, f"status-{uuid.uuid4().hex}")
        request = {
            "argv": argv,
            "env": {**env, "JPY_PARENT_PID": str(self.process.pid)},
            "cwd": str(cwd),
            "jail": jail_options,
            "namespaces": namespaces,
            "status_file": status_file,
        }
        with self.connect() as connection:
            connection.sendall(json.dumps(request).encode())
            connection.shutdown(socket.SHUT_WR)
            reply = json.loads(receive(connection))
        return ForkedKernelProcess(reply["pid"], status_file)

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
        shutil.rmtree(self.folder, ignore_errors=True)


_server = None


def fork_server(environment):
    """Return this process's fork server, started on first use."""
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = ForkServer(environment)
    return _server


class ForkProvisioner(LocalProvisioner):
    """Launch the kernel through the fork server when the kernel manager gives fork options, else as LocalProvisioner.

    The kernel manager (grader.sandbox.SandboxKernelManager) sets its attribute
    fork_options, the keyword arguments of ForkServer.fork_kernel, for an ipykernel command.
    """

    async def launch_kernel(self, cmd, **kwargs):
        options = getattr(self.parent, "fork_options", None)
        if options is None:
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        cwd = kwargs.get("cwd") or os.getcwd()
        self.process = fork_server(env).fork_kernel(cmd, env, cwd, **options)
        # The monitor calls setsid, so its process group, which interrupts go to, is its pid.
        self.pid = self.pgid = self.process.pid
        self.cwd = cwd
        return self.connection_info


if __name__ == "__main__":
    serve(sys.argv[1])
