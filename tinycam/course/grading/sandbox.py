"""Each notebook in a sandbox: a private folder, its own session, resource limits, and bubblewrap when there is one.

Every kernel gets:

- a private temporary folder as its working folder and HOME, holding a copy of the notebook, the kernel's connection
  file and IPC sockets, and the hidden cases' files; removed when the kernel is done, on every path;
- its own session (so its own process group), killed as a whole when the kernel is done, together with every
  process still carrying the kernel's token in its environment (a `start_new_session` child leaves the group);
- resource limits (`resource.setrlimit`): address space, CPU time, file size, open files, processes, no core files;
- when the grader runs as root and nobody can run this Python, the uid and gid 65534 (nobody): it can neither signal
  the grader nor write its files, and the process limit holds (the kernel does not count processes of root);
- with bubblewrap (`bwrap`), a sandbox: the whole file system read-only but the private folder, a private /tmp, no
  network, its own PID, IPC and UTS namespaces (it sees neither the grader nor its memory), a new session, killed
  with its parent. The kernel talks to the grader over ZMQ's IPC transport (sockets in the private folder).

`TINYCAM_GRADE_NO_BWRAP=1` grades without bubblewrap even where it is installed (and tests that path).
"""

import contextlib
import functools
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NOBODY = 65534  # the uid and gid a root grader runs kernels as
MEMORY = 4 << 30  # address space per process
FILE_SIZE = 256 << 20  # the largest file a kernel may write
TMP_SIZE = 256 << 20  # the private /tmp (a tmpfs: memory) under bubblewrap
PROCESSES = 256  # processes and threads of the kernel's uid, beyond those it already has
OPEN_FILES = 1024
FOLDER_QUOTA = 1 << 30  # bytes in the private folder, all files together (RLIMIT_FSIZE bounds each one)
WATCH_EVERY = 0.25  # seconds between two measures of the folder
TOKEN_VARIABLE = "TINYCAM_SANDBOX"  # in every kernel's environment: how its stray processes are found
NO_BWRAP_VARIABLE = "TINYCAM_GRADE_NO_BWRAP"
PIDS_CGROUPS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")  # cgroup v1's pids hierarchy, v2's unified one


@functools.cache
def drops_privileges():
    """Whether kernels run as nobody: only a root grader can switch uid, and only when nobody can run this Python and
    import what a kernel needs (a Python under /root cannot be)."""
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run([sys.executable, "-c", "import ipykernel, numpy, tinycam"], cwd="/", timeout=60,
                              capture_output=True, user=NOBODY, group=NOBODY, extra_groups=[]).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _under(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def bwrap_argv(folder, hidden=(), visible=()):
    """The bubblewrap command line (before the kernel's own) for a kernel whose private folder is `folder`: the
    folders `hidden` replaced by empty ones, a private /tmp; this Python's environment and the folders `visible`
    stay readable even inside /tmp or a hidden folder."""
    folder = str(folder)
    real = sorted({os.path.realpath(h) for h in hidden} - {"/"})
    base = os.path.realpath(sys.base_prefix)
    real = [h for h in real if not _under(base, h) and not _under(folder, h)]
    shown = sorted({os.path.realpath(v) for v in [sys.prefix, *visible]})
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size", str(TMP_SIZE), "--tmpfs", "/tmp"]
    args += [a for v in shown if _under(v, "/tmp") for a in ("--ro-bind", v, v)]
    outer = [h for h in real if not any(h != other and _under(h, other) for other in real)]
    args += [a for h in outer for a in ("--tmpfs", h)]
    inside = [v for v in shown if any(_under(v, h) for h in outer)]  # brought back from under a hidden folder...
    args += [a for v in inside for a in ("--ro-bind", v, v)]
    args += [a for h in real if any(_under(h, v) for v in inside) for a in ("--tmpfs", h, "--remount-ro", h)]
    args += [a for h in outer for a in ("--remount-ro", h)]  # ...then the hidden folders made read-only
    return args + ["--bind", folder, folder, "--chdir", folder,
                   "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                   "--die-with-parent", "--new-session", "--setenv", "HOME", folder,
                   # the grader's pid means nothing in the kernel's PID namespace (ipykernel would exit)
                   "--unsetenv", "JPY_PARENT_PID", "--"]


@functools.cache
def bwrap_problem():
    """"" when kernels can run under bubblewrap here, else why not (tried once per process)."""
    if os.environ.get(NO_BWRAP_VARIABLE, "") not in ("", "0"):
        return f"{NO_BWRAP_VARIABLE} is set"
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed"
    folder = tempfile.mkdtemp(prefix="tinycam-bwrap-check-")
    try:
        if drops_privileges():
            os.chown(folder, NOBODY, NOBODY)
        run = subprocess.run(bwrap_argv(folder) + [sys.executable, "-c", "open('ok', 'w').close()"],
                             capture_output=True, text=True, timeout=60, **_identity())
        if run.returncode or not os.path.exists(os.path.join(folder, "ok")):
            return f"bwrap does not run here ({(run.stderr.strip() or f'exit status {run.returncode}')[:200]})"
        return ""
    except (OSError, subprocess.SubprocessError) as error:
        return f"bwrap does not run here ({error})"
    finally:
        remove(folder)


@functools.cache
def pids_cgroup_root():
    """Where this grader can make a cgroup with a process limit (pids.max), or "": the limit that holds for a kernel
    running as root, which RLIMIT_NPROC does not bound."""
    for root in PIDS_CGROUPS:
        probe = os.path.join(root, f"tinycam-probe-{os.getpid()}")
        try:
            os.mkdir(probe)
        except OSError:
            continue
        try:
            with open(os.path.join(probe, "pids.max"), "w") as file:
                file.write("16")
            return root
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(probe)
    return ""


def _identity():
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if drops_privileges() else {}


def reach():
    """What a submission can reach when grading starts, and how to sandbox it; "" when bubblewrap is used."""
    why = bwrap_problem()
    if not why:
        return ""
    who = ("as nobody (uid 65534), so it can write only the files anybody may write, and cannot signal the grader"
           if drops_privileges() else "as the grader's user, so it can write every file the grader can write and signal "
                               "the grader")
    return (f"grade: {why}: submissions are not sandboxed. Each kernel runs in a private temporary folder, in its "
            f"own session, with resource limits and a time budget, but {who}; it can read every file it may read, "
            "use the network and see other processes. To sandbox them, install bubblewrap (apt-get install "
            "bubblewrap) or grade in a container.")


@functools.cache
def warn_once():
    """Say once per process, on stderr, what a submission can still reach (nothing when bubblewrap is used)."""
    message = reach()
    if message:
        print(message, file=sys.stderr)


def _processes_of(uid):
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


class Sandbox:
    """A private folder (holding a copy of `notebook`, when given), and how to launch a process there
    (`popen_kwargs`, `wrap`) that cannot see the folders `hidden` but sees `visible` (under bubblewrap)."""

    def __init__(self, notebook, cpu_seconds, hidden=(), visible=()):
        self.folder = Path(tempfile.mkdtemp(prefix="tinycam-grade-"))
        self.token = secrets.token_hex(16)
        self.bwrap = not bwrap_problem()
        self.hidden = tuple(str(h) for h in hidden)
        self.visible = tuple(str(v) for v in visible)
        self.cpu_seconds = max(1, int(cpu_seconds))
        self.pid = None  # the launched process (bwrap, or the kernel), set by the kernel manager
        self.over_quota = False  # set when the folder grew past FOLDER_QUOTA and its processes were killed
        self.cgroup = _new_cgroup(self.token)  # its processes' cgroup, limited to PROCESSES tasks ("" when none)
        self._closed = threading.Event()
        try:
            self.own(self.folder)
            if notebook is not None:
                self.write(Path(notebook).name, Path(notebook).read_bytes())
        except BaseException:
            remove(self.folder)
            raise

    def write(self, name, data):
        """Write a new file `name` in the private folder, for the process to read (never through a link)."""
        path = self.folder / name
        with open(path, "xb") as file:
            file.write(data)
        self.own(path)
        return path

    def own(self, path):
        """Let the kernel's uid write `path` (a file the grader made for it)."""
        if drops_privileges():
            os.chown(path, NOBODY, NOBODY)

    def wrap(self, argv):
        """The kernel's command line, run under bubblewrap when it is used."""
        return bwrap_argv(self.folder, self.hidden, self.visible) + list(argv) if self.bwrap else list(argv)

    def popen_kwargs(self):
        """What the kernel is launched with: its folder, environment, uid, limits; its output thrown away."""
        env = dict(os.environ, HOME=str(self.folder), TMPDIR=str(self.folder), MALLOC_ARENA_MAX="2")
        env[TOKEN_VARIABLE] = self.token
        processes = PROCESSES + (0 if drops_privileges() else _processes_of(os.getuid()))
        cpu, limits = self.cpu_seconds, [(resource.RLIMIT_AS, MEMORY), (resource.RLIMIT_FSIZE, FILE_SIZE),
                                         (resource.RLIMIT_NOFILE, OPEN_FILES), (resource.RLIMIT_NPROC, processes),
                                         (resource.RLIMIT_CORE, 0)]

        procs = os.path.join(self.cgroup, "cgroup.procs") if self.cgroup else ""

        def limit():  # in the child, after fork (and after the uid switch): plain system calls only
            if procs:  # in its cgroup before it runs anything (a root child can; else `confine` does it)
                with contextlib.suppress(OSError), open(procs, "w") as file:
                    file.write(str(os.getpid()))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
            for which, value in limits:
                soft, hard = resource.getrlimit(which)
                value = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(which, (value, value))

        return {"cwd": str(self.folder), "env": env, "preexec_fn": limit, "stdout": subprocess.DEVNULL,
                "stderr": subprocess.DEVNULL, **_identity()}

    def confine(self):
        """Put the launched process in the sandbox's cgroup (when its child could not, having dropped to nobody)."""
        if self.cgroup and self.pid:
            with contextlib.suppress(OSError), open(os.path.join(self.cgroup, "cgroup.procs"), "w") as file:
                file.write(str(self.pid))

    def kill(self):
        """Kill the kernel's process group, its cgroup and every process carrying its token, until none is left."""
        if self.pid:
            _signal_group(self.pid)
        for _ in range(50):
            stray = _carrying(self.token) + _in_cgroup(self.cgroup)
            if not stray:
                return
            for pid in stray:
                _signal_group(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def close(self):
        self._closed.set()
        try:
            self.kill()
        finally:
            remove(self.folder)
            _remove_cgroup(self.cgroup)

    def _watch(self):
        """Kill the processes when the folder holds more than FOLDER_QUOTA bytes (a disk quota of sorts)."""
        while not self._closed.wait(WATCH_EVERY):
            if folder_size(self.folder, FOLDER_QUOTA) > FOLDER_QUOTA:
                self.over_quota = True
                self.kill()

    def __enter__(self):
        threading.Thread(target=self._watch, name="tinycam-sandbox-quota", daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.close()


def _new_cgroup(token):
    root = pids_cgroup_root()
    if not root:
        return ""
    path = os.path.join(root, f"tinycam-{token}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as file:
            file.write(str(PROCESSES))
        return path
    except OSError:
        _remove_cgroup(path)
        return ""


def _in_cgroup(path):
    if not path:
        return []
    try:
        with open(os.path.join(path, "cgroup.procs")) as file:
            return [int(line) for line in file.read().split()]
    except (OSError, ValueError):
        return []


def _remove_cgroup(path):
    for _ in range(100):  # a cgroup goes once its last task has exited
        if not path or not os.path.isdir(path):
            return
        try:
            os.rmdir(path)
        except OSError:
            time.sleep(0.01)


def _signal_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _carrying(token):
    """The pids of the processes whose environment holds `token` (those this user may read)."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as file:
                    if needle in file.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def folder_size(folder, limit):
    """The bytes the files under `folder` take (links not followed), counted until `limit` is passed."""
    total, stack = 0, [str(folder)]
    while stack and total <= limit:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


def remove(folder):
    """Remove `folder` and everything in it, whatever a submission did to the permissions inside."""
    def writable_then_retry(function, path, _):
        try:
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
            function(path)
        except OSError:
            pass

    shutil.rmtree(folder, onerror=writable_then_retry)
    if os.path.lexists(folder):
        shutil.rmtree(folder, ignore_errors=True)


def read_limited(path, limit):
    """The bytes of the regular file at `path`, never following a link nor reading more than `limit` bytes (a
    submission can put anything in its folder: a link to /dev/zero, a FIFO, a huge file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit} bytes")
    return data
