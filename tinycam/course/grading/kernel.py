"""Drive a fresh Jupyter kernel of this environment's Python: run cells under a per-cell timeout, interrupt, and
notice when the kernel died or can no longer be used.

nbclient, nbformat and jupyter_client are imported when a kernel is made, not with this module (the kernel imports
the grading package too, to reach `runner`).
"""

import logging
import subprocess
import sys
from dataclasses import dataclass

KERNEL_NAME = "tinycam-grader-python"  # resolved to this environment's Python below, whatever kernels are installed
_TIMEOUT_ENAME = "TinycamCellTimeout"


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
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, **spec)
            return super().get_kernel_spec(kernel_name)

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_kernel_spec_manager(self):
            return ThisPythonKernelSpecs(data_dir=self.data_dir)

    return ThisPythonKernelManager


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
    """A fresh kernel executing the cells of one in-memory notebook, with a per-cell timeout and interrupts."""

    def __init__(self, nb, folder, timeout):
        from nbclient import NotebookClient

        self.nb, self.timeout = nb, timeout
        self.reply = None
        self.dead = ""  # why the kernel can no longer be used; "" while it can
        self.client = NotebookClient(
            nb, kernel_name=KERNEL_NAME, kernel_manager_class=kernel_manager_class(),
            timeout_func=lambda cell: self.timeout, interrupt_on_timeout=True, allow_errors=True,
            # on a timeout: interrupt, and report this instead of waiting for the kernel's reply
            error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "", "traceback": []},
            resources={"metadata": {"path": str(folder)}}, shutdown_kernel="immediate", record_timing=False,
            on_cell_executed=self._record, log=_quiet_log(),
        )

    def _record(self, cell, cell_index, execute_reply):
        self.reply = (execute_reply or {}).get("content", {})

    def __enter__(self):
        self._context = self.client.setup_kernel(stderr=subprocess.DEVNULL)
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
        saved, self.timeout = self.timeout, timeout or self.timeout
        try:
            return self._execute(self.nb.cells[-1], len(self.nb.cells) - 1, store_history=False, probe=probe)
        finally:
            self.timeout = saved
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
