"""A kernel manager that runs each grading kernel in a sandbox: its own user, file system view and limits.

Student code runs inside the grading kernel, so it could otherwise rewrite the gradebook,
read solution.py, open network connections or leave processes behind. Each kernel this
manager starts gets:

- a user id of its own (62000 to 62999, no login, no groups), so its files and processes
  are separate from the grader's and from other kernels', also when several grading
  processes run at once;
- new mount, network, IPC and PID namespaces (``unshare``). In them grader.jail builds a root
  folder with only the system folders, the Python environment, the hidden tests' library
  and a private copy of the kernel's working folder. The only network device is an
  unconfigured loopback device;
- limits on its address space, its processes and threads, and the size of files it writes.

The kernel talks to the grader over Unix sockets (ZeroMQ's ipc transport) in a folder the
two share, because the kernel's network namespace has no link to the grader's loopback.
When the kernel ends, for whatever reason, the PID namespace ends with it and takes down
every process the student's code started; the manager then kills anything left running
under the kernel's user id as well.

With fork_kernels on, the kernel is instead a fork of grader.forkserver's server, which
has already imported numpy, torch and ipykernel. The forked process enters the same
namespaces and the same jail itself.

The sandbox needs root and util-linux's ``unshare`` and ``setpriv``. Without them the
kernel runs as the grader's user with the memory limit only, and a warning is logged.
"""

import fcntl
import logging
import os
import pwd
import random
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer

from grader import REPOSITORY
from grader.forkserver import ForkProvisioner, is_ipykernel_command

log = logging.getLogger(__name__)

KERNEL_LIBRARY = REPOSITORY / "grader" / "kernel"
JAIL = Path(__file__).with_name("jail.py")
FIRST_UID, LAST_UID = 62000, 62999
MEBIBYTE = 2**20


def sandbox_available():
    """Tell whether kernels can be sandboxed here: as root on Linux, with util-linux's unshare and setpriv."""
    tools = all(shutil.which(name) is not None for name in ("unshare", "setpriv"))
    return os.geteuid() == 0 and tools and sys.platform.startswith("linux")


class UserIdLease:
    """An exclusive claim on one unused user id, held by a lock file for the lifetime of a kernel.

    The lock is an flock(2) lock, which the operating system releases when the grading
    process ends, so a crash leaves no stale claim behind.
    """

    def __init__(self):
        folder = Path(tempfile.gettempdir()) / "backprop-kernel-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        candidates = list(range(FIRST_UID, LAST_UID + 1))
        random.shuffle(candidates)
        for uid in candidates:
            if self._is_assigned(uid):
                continue
            handle = open(folder / f"{uid}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.uid, self._handle = uid, handle
            return
        raise RuntimeError(f"no free user id between {FIRST_UID} and {LAST_UID} for a grading kernel")

    @staticmethod
    def _is_assigned(uid):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return False
        return True

    def release(self):
        kill_processes_of(self.uid)
        self._handle.close()


def kill_processes_of(uid):
    """Send SIGKILL to every process running under a user id; return how many there were."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
        except (FileNotFoundError, ProcessLookupError):
            continue
    if killed:
        log.warning("Killed %d leftover processes of the grading kernel's user %d", killed, uid)
    return killed


class SandboxKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernels run in grader.jail's sandbox; limits are set in nbgrader_config.py."""

    sandbox = Bool(
        True,
        help="Run each kernel as its own user, without network, in a private file system view. "
        "Needs root and util-linux's unshare; without them only the memory limit applies.",
    ).tag(config=True)

    # NOTE: RLIMIT_AS limits each process, so a kernel's processes together may use up to
    # process_limit times this. A memory cgroup per kernel would cap their sum.
    memory_limit = Integer(
        4096, help="The address space a kernel and each process it starts may use, in MiB (0: no limit)."
    ).tag(config=True)

    process_limit = Integer(
        256, help="The processes and threads a kernel's user may run at once (0: no limit). Needs the sandbox."
    ).tag(config=True)

    file_size_limit = Integer(64, help="The largest file a kernel may write, in MiB.").tag(config=True)

    fork_kernels = Bool(
        False,
        help="Start each ipykernel kernel as a fork of a process that has already imported numpy, torch "
        "and ipykernel (grader.forkserver), in the same sandbox, instead of a new interpreter.",
    ).tag(config=True)

    # The keyword arguments of ForkServer.fork_kernel for the kernel being started; None
    # starts its command as a new process.
    fork_options = None

    _lease = None
    _folder = None

    async def _async_pre_start_kernel(self, **kw):
        """Choose the user id and the shared socket folder, then wrap the kernel's command in the jail."""
        self._release_sandbox()
        # A short path: a Unix socket's path may have at most 107 bytes on Linux.
        self._folder = tempfile.mkdtemp(prefix="bpk-", dir=None if len(tempfile.gettempdir()) < 60 else "/tmp")
        self.transport = "ipc"
        # An absolute path: a relative one ("kernel-ipc", jupyter_client's default) is taken
        # from the working folder of each side, and the grader's and the kernel's differ.
        self.ip = os.path.join(self._folder, "kernel")
        self.connection_file = os.path.join(self._folder, "kernel.json")
        use_sandbox = self.sandbox and sandbox_available()
        if self.sandbox and not use_sandbox:
            log.warning(
                "Grading kernels run without the sandbox (as %s, with network and file access): "
                "it needs root and util-linux's unshare and setpriv",
                pwd.getpwuid(os.geteuid()).pw_name,
            )
        if use_sandbox:
            self._lease = UserIdLease()
            # NOTE: the kernel owns this folder on the host disk, so it can fill it (64 MiB per
            # file, any number of files) and swap its sockets for symlinks that the grader then follows as root.
            os.chown(self._folder, self._lease.uid, self._lease.uid)
        if self.fork_kernels and self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)

        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        if use_sandbox:
            os.chown(self.connection_file, self._lease.uid, self._lease.uid)
            options = self._sandbox_options(kw.get("cwd"))
        else:
            options = self._limit_options()
        self.fork_options = None
        if self.fork_kernels and is_ipykernel_command(kernel_cmd):
            self.fork_options = {"jail_options": options, "namespaces": use_sandbox}
            log.debug("Kernel command, to be forked: %s, jail options %s", kernel_cmd, options)
            return kernel_cmd, kw
        # By path: the kernel's working folder is not the repository, and jail.py needs only the standard library.
        kernel_cmd = [sys.executable, str(JAIL), *options, "--", *kernel_cmd]
        if use_sandbox:
            kernel_cmd = ["unshare", "--mount", "--net", "--ipc", "--pid", "--fork", "--kill-child", "--", *kernel_cmd]
            # unshare, and with it the kernel, ends when the grading process does, also when that is killed.
            # NOTE: the kernel's sandbox folder then stays in the temporary folder.
            kernel_cmd = ["setpriv", "--pdeathsig", "KILL", "--", *kernel_cmd]
        log.debug("Kernel command: %s", kernel_cmd)
        return kernel_cmd, kw

    def _limit_options(self):
        """Return grader/jail.py's options for the memory and file size limits alone."""
        return ["--memory", str(self.memory_limit * MEBIBYTE), "--file-size", str(self.file_size_limit * MEBIBYTE)]

    def _sandbox_options(self, cwd):
        """Return grader/jail.py's options for the whole sandbox, to be used in new namespaces."""
        uid = self._lease.uid
        readable = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, KERNEL_LIBRARY)}
        options = self._limit_options()
        options += ["--uid", str(uid), "--gid", str(uid), "--root", os.path.join(self._folder, "root")]
        options += ["--host-namespace", os.readlink("/proc/self/ns/mnt")]
        options += ["--processes", str(self.process_limit)]
        for path in sorted(readable):
            options += ["--bind", path]
        options += ["--writable", self._folder]
        if cwd:
            options += ["--workdir", os.path.realpath(cwd)]
        return options

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        self._release_sandbox()

    # AsyncKernelManager binds the base class's coroutine to this name; nbclient calls it
    # directly after a kernel died.
    cleanup_resources = _async_cleanup_resources

    def _release_sandbox(self):
        """Kill what is left of the kernel's processes, free its user id and remove the socket folder."""
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
