"""Start a grading kernel in a private file system view, as an unprivileged user, with resource limits.

The sandbox's kernel manager runs this module as root inside fresh mount, network, IPC
and PID namespaces (``unshare --mount --net --ipc --pid --fork``):

    python grader/jail.py --uid 61234 --root /tmp/bpk-x/root --bind /tmp/venv ... -- python -m ipykernel_launcher -f ...

A kernel forked by grader.forkserver takes the same options, enters the namespaces with
this module's unshare() and calls enter() instead of executing a new program.

It builds a new root directory on a tmpfs that contains only the system folders
(read-only), the given bind paths (read-only), the writable ones, a private copy of the
kernel's working folder and empty /tmp and /dev/shm. Everything else, the gradebook, the
source notebook, solution.py and other students' folders included, does not exist
there. It then sets the resource limits, drops to the given user id and group id with no
supplementary groups, and executes the kernel, which becomes PID 1 of the namespace.
When it ends, the Linux kernel kills every process the student's code started.
"""

import argparse
import ctypes
import os
import resource
import shutil
import signal
import sys
from pathlib import Path

# Namespace flags from <sched.h>.
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Mount flags from <sys/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

# System folders the interpreter and its libraries need, visible read-only.
SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"]
DEVICES = ["null", "zero", "full", "random", "urandom"]

libc = ctypes.CDLL(None, use_errno=True)


def mount(source, target, fstype=None, flags=0, data=None):
    """Call mount(2); raise OSError with the paths on failure."""
    encode = lambda value: value.encode() if value is not None else None  # noqa: E731
    if libc.mount(encode(source), encode(str(target)), encode(fstype), flags, encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target} failed: {os.strerror(errno)}")


def unshare(flags):
    """Call unshare(2): move this process into new namespaces (a new PID namespace takes its next child)."""
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare({flags:#x}) failed: {os.strerror(errno)}")


def inside(root, path):
    """Return the place of an absolute host path below the new root."""
    return Path(root) / Path(path).relative_to("/")


def bind(root, path, writable=False):
    """Make a host file or folder visible at the same path below the new root."""
    target = inside(root, path)
    if os.path.islink(path):
        # Merged-/usr systems link /bin to usr/bin: keep the link, the target is bound anyway.
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_symlink():
            os.symlink(os.readlink(path), target)
        return
    if not os.path.exists(path):
        return
    if os.path.isdir(path):
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    # Recursive for the system folders, which may hold mounts of their own; not for the
    # writable folders, one of which contains the new root.
    mount(path, target, flags=MS_BIND | (0 if writable else MS_REC))
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if writable else MS_RDONLY)
    if os.path.isdir(path) or not writable:
        flags |= MS_NODEV
    mount(None, target, flags=flags)


def populate_devices(root):
    """Give the new root a /dev with only the harmless character devices."""
    dev = inside(root, "/dev")
    dev.mkdir()
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "size=64k,mode=755")
    for name in DEVICES:
        (dev / name).touch()
        mount(f"/dev/{name}", dev / name, flags=MS_BIND)
    links = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
    for name, target in links.items():
        os.symlink(target, dev / name)
    (dev / "shm").mkdir()
    mount("tmpfs", dev / "shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")


def copy_working_folder(root, folder, uid, gid):
    """Mount a tmpfs at the kernel's working folder and copy its files there, owned by the kernel's user.

    The student's code may change this copy as it likes; the submitted and autograded
    files outside stay as they are.
    """
    target = inside(root, folder)
    target.mkdir(parents=True, exist_ok=True)
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=755")
    for path in Path(folder).iterdir():
        if path.is_file() and not path.is_symlink():
            shutil.copy(path, target / path.name)
            os.chown(target / path.name, uid, gid)
    os.chown(target, uid, gid)


def ensure_own_mount_namespace(host_namespace):
    """Raise OSError if this process is still in `host_namespace` (as /proc/PID/ns/mnt names it), whose mounts build_root must not touch."""
    if host_namespace and os.readlink("/proc/self/ns/mnt") == host_namespace:
        raise OSError(
            "grader/jail.py: --root needs a new mount namespace (unshare --mount); without one its mounts "
            "would change the whole system's, so no kernel was started"
        )


def build_root(arguments):
    """Assemble the new root folder; return its path."""
    ensure_own_mount_namespace(arguments.host_namespace)
    root = Path(arguments.root)
    root.mkdir(parents=True, exist_ok=True)
    # Mounts made here must not show up in the grader's namespace.
    mount(None, "/", flags=MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    for path in SYSTEM_PATHS:
        bind(root, path)
    populate_devices(root)
    (root / "proc").mkdir(exist_ok=True)
    mount("proc", root / "proc", "proc", MS_NOSUID | MS_NODEV)
    for folder in ("/tmp", "/var/tmp"):
        target = inside(root, folder)
        target.mkdir(parents=True, exist_ok=True)
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777")
    # After /tmp, so that a virtual environment or course below /tmp stays visible.
    for path in arguments.bind:
        bind(root, path)
    for path in arguments.writable:
        bind(root, path, writable=True)
    if arguments.workdir:
        copy_working_folder(root, arguments.workdir, arguments.uid, arguments.gid)
    return root


def set_limits(arguments):
    """Apply the memory, process, file size and core dump limits to the kernel and its children."""
    limits = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, arguments.file_size),
    ]
    if arguments.memory:
        limits.append((resource.RLIMIT_AS, arguments.memory))
    if arguments.processes:
        limits.append((resource.RLIMIT_NPROC, arguments.processes))
    for kind, value in limits:
        resource.setrlimit(kind, (value, value))


def drop_privileges(uid, gid):
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="grader/jail.py", description=__doc__.partition("\n")[0])
    parser.add_argument("--uid", type=int, help="the user id the kernel runs as (none: keep the current one)")
    parser.add_argument("--gid", type=int, help="the group id the kernel runs as")
    parser.add_argument("--root", help="an empty folder to build the new root in (none: keep the host's file system)")
    parser.add_argument(
        "--host-namespace", help="the grader's mount namespace, e.g. 'mnt:[4026531841]', which --root must not change"
    )
    parser.add_argument("--bind", action="append", default=[], help="a host path to show read-only")
    parser.add_argument("--writable", action="append", default=[], help="a host path to show writable")
    parser.add_argument("--workdir", help="the kernel's working folder, shown as a private copy")
    parser.add_argument("--memory", type=int, default=0, help="the address space limit in bytes (0: none)")
    parser.add_argument("--processes", type=int, default=0, help="the limit of processes and threads of the user (0: none)")
    parser.add_argument("--file-size", type=int, default=64 * 2**20, help="the largest file the kernel may write, in bytes")
    parser.add_argument("command", nargs="+", help="the kernel's command line (for enter(): informative only)")
    return parser.parse_args(argv)


def enter(arguments):
    """Move this process into the new root, apply the limits and drop to the kernel's user, as `arguments` specify."""
    if arguments.root:
        root = build_root(arguments)
        os.chroot(root)
        os.chdir(arguments.workdir or "/tmp")
        os.environ.update(HOME="/tmp", TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib", IPYTHONDIR="/tmp/ipython")
    set_limits(arguments)
    if arguments.uid is not None:
        drop_privileges(arguments.uid, arguments.gid)
        # The kernel sends its output to the grader as messages. Its inherited stdout and
        # stderr are the grader's own, often log files that student code could rewrite.
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        os.close(quiet)
        # The change of user cleared the parent-death signal that `unshare --kill-child` or
        # the fork server's monitor set, so the kernel would outlive its parent.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv=None):
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    enter(arguments)
    os.execv(arguments.command[0], arguments.command)


if __name__ == "__main__":
    main()
