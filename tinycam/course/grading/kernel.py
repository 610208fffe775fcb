"""Drive a fresh Jupyter kernel of this environment's Python: run cells under a per-cell timeout and a deadline,
interrupt, and notice when the kernel died or can no longer be used.

The kernel is launched in a `sandbox.Sandbox` (its private folder, limits, bubblewrap when there is one) and talks to
the grader over ZMQ's IPC transport, through sockets in that folder. What the grader keeps of its outputs is bounded:
messages larger than MESSAGE_SIZE are refused by the grader's sockets, and outputs beyond OUTPUT_PER_CELL per cell or
OUTPUT_TOTAL per kernel are dropped (the grader never reads them; a cell printing 300 MB costs it a few MB).

nbclient, nbformat and jupyter_client are imported when a kernel is made, not with this module.
"""

import logging
import sys
import time
from dataclasses import dataclass

KERNEL_NAME = "tinycam-grader-python"  # resolved to this environment's Python below, whatever kernels are installed
_TIMEOUT_ENAME = "TinycamCellTimeout"
MESSAGE_SIZE = 8 << 20  # the largest message part the grader accepts from a kernel
RECEIVE_QUEUE = 64  # messages queued per socket: with MESSAGE_SIZE, at most 512 MB even for a flood
OUTPUT_PER_CELL = 1 << 20  # characters of output kept per cell
OUTPUT_TOTAL = 4 << 20  # and per kernel


def kernel_manager_class():
    """An AsyncKernelManager whose KERNEL_NAME is this Python with ipykernel (like nbval's --nbval-current-env)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonKernelSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name == KERNEL_NAME:
                spec = ipykernel.kernelspec.get_kernel_dict()
                spec["argv"][0] = sys.executable
                spec["interrupt_mode"] = "message"  # a signal cannot reach into bubblewrap's new session
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)
            return super().get_kernel_spec(kernel_name)

    class ThisPythonKernelManager(AsyncKernelManager):
        sandbox = None  # a sandbox.Sandbox: the kernel's command line is wrapped by it

        @default("kernel_spec_manager")
        def _default_kernel_spec_manager(self):
            return ThisPythonKernelSpecs(data_dir=self.data_dir)

        def format_kernel_cmd(self, extra_arguments=None):
            argv = super().format_kernel_cmd(extra_arguments)
            return self.sandbox.wrap(argv) if self.sandbox else argv

        def write_connection_file(self, **kwargs):
            super().write_connection_file(**kwargs)
            if self.sandbox:
                self.sandbox.own(self.connection_file)  # the kernel (nobody, under a root grader) reads it

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            await super()._async_launch_kernel(kernel_cmd, **kw)
            if self.sandbox and self.provisioner is not None:
                self.sandbox.pid = getattr(self.provisioner, "pid", None)
                self.sandbox.confine()

        def client(self, **kwargs):
            import zmq

            client = super().client(**kwargs)
            client.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_SIZE)  # sockets made after this: all the channels
            client.context.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
            return client

    return ThisPythonKernelManager


def _capped_client_class():
    """nbclient's NotebookClient keeping at most OUTPUT_PER_CELL characters of output per cell, OUTPUT_TOTAL in all."""
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            sizes = self.__dict__.setdefault("_tinycam_sizes", {})
            content = msg.get("content") or {}
            size = len(content.get("text") or "") + sum(len(str(v)) for v in (content.get("data") or {}).values())
            kept, total = sizes.get(cell_index, 0), sizes.get(None, 0)
            if kept + size > OUTPUT_PER_CELL or total + size > OUTPUT_TOTAL:
                if sizes.get(("cut", cell_index)) is None:
                    sizes["cut", cell_index] = True
                    from nbformat.v4 import new_output

                    outs.append(new_output("stream", name="stderr", text="[output cut by the grader]\n"))
                return None
            sizes[cell_index], sizes[None] = kept + size, total + size
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _quiet_log():
    """nbclient's logger, silenced: it logs every timeout and interrupt as an error."""
    log = logging.getLogger("tinycam.course.grading.nbclient")
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


@dataclass
class CellRun:
    """How one cell's execution ended."""

    ok: bool = True
    timed_out: bool = False
    dead: bool = False  # the kernel is gone, or no longer usable (see Kernel.dead)
    error: str = ""  # "ename: evalue" when the cell raised


class Kernel:
    """A fresh kernel executing the cells of one in-memory notebook in `sandbox`, with a per-cell timeout, a deadline
    (`time.monotonic()`, None: none) for the notebook's cells and cases, and interrupts."""

    def __init__(self, nb, sandbox, timeout, deadline=None):
        self.nb, self.timeout, self.deadline = nb, timeout, deadline
        self.reply = None
        self.dead = ""  # why the kernel can no longer be used; "" while it can
        self._probing = False
        folder = sandbox.folder
        km = kernel_manager_class()(kernel_name=KERNEL_NAME, transport="ipc", ip=str(folder / "kernel-ipc"),
                                    connection_file=str(folder / "kernel.json"))
        km.sandbox = sandbox
        self._launch = sandbox.popen_kwargs()
        self.client = _capped_client_class()(
            nb, km=km, kernel_name=KERNEL_NAME, timeout_func=lambda cell: self._cell_timeout(),
            interrupt_on_timeout=True, allow_errors=True,
            # on a timeout: interrupt, and report this instead of waiting for the kernel's reply
            error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "", "traceback": []},
            resources={"metadata": {"path": str(folder)}}, shutdown_kernel="immediate", record_timing=False,
            on_cell_executed=self._record, log=_quiet_log(),
        )

    @property
    def out_of_time(self):
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _cell_timeout(self):
        if self._probing or self.deadline is None:
            return self.timeout
        return max(0.1, min(self.timeout, self.deadline - time.monotonic()))

    def _record(self, cell, cell_index, execute_reply):
        self.reply = (execute_reply or {}).get("content", {})

    def __enter__(self):
        self._context = self.client.setup_kernel(**self._launch)
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

    def run_cell(self, index):
        """Execute the notebook's cell `index`."""
        return self._execute(self.nb.cells[index], index, store_history=True)

    def run_source(self, source, timeout=None, probe=True):
        """Execute `source` in a scratch cell (appended to the notebook for the time of the call)."""
        from nbformat.v4 import new_code_cell

        self.nb.cells.append(new_code_cell(source))
        saved, self.timeout, self._probing = self.timeout, timeout or self.timeout, not probe
        try:
            return self._execute(self.nb.cells[-1], len(self.nb.cells) - 1, store_history=False, probe=probe)
        finally:
            self.timeout, self._probing = saved, False
            self.nb.cells.pop()

    def _execute(self, cell, index, store_history, probe=True):
        """Run one cell; after a timeout, `probe` checks that the interrupt stopped it before anything else is sent."""
        from nbclient.exceptions import DeadKernelError

        if self.dead:
            return CellRun(ok=False, dead=True)
        self.reply = None
        try:
            self.client.execute_cell(cell, index, store_history=store_history)
        except DeadKernelError:
            self.dead = "the kernel died"
            return CellRun(ok=False, dead=True)
        reply: dict = self.reply or {}
        if any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in reply.get("payload") or []):
            self.dead = "the kernel was asked to exit (exit() or quit())"  # it stops once the reply is sent
            return CellRun(ok=False, dead=True)
        if reply.get("status") != "error":
            return CellRun()
        if reply.get("ename") == _TIMEOUT_ENAME:
            # interrupted: make sure the interrupt worked before sending anything else
            if not probe or not self.run_source("pass", timeout=max(self.timeout, 5.0), probe=False).ok:
                self.dead = self.dead or "the kernel did not stop when interrupted after a timeout"
            return CellRun(ok=False, timed_out=True, dead=bool(self.dead))
        return CellRun(ok=False, error=f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}".strip(": "))
