"""nbgrader's Execute preprocessor, made to survive a dead or stuck kernel and to trust only the kernel's reply.

nbgrader 0.9.6 stops autograding a notebook when its kernel dies (``os._exit``, a
segmentation fault, the memory limit), so the student loses every point. It also waits
for a cell as long as the kernel's interrupt takes, however often the cell's code ignores
it. GradingExecute instead:

- marks the cell during which the kernel died or timed out with an error output that
  explains it in plain words. It then starts a new kernel, runs the earlier cells that
  are not test cells again, and goes on, so that test cells that passed keep their points;
- gives the whole notebook a time limit, after which the remaining cells fail with a
  message saying why;
- resets IPython's shell before each test cell (traceback display, exception handlers,
  code transformers), and fails a cell whose execute_reply is an error even when the
  student's code hid the traceback;
- always runs the course's kernel in the sandbox of grader.sandbox, whatever kernel
  name the notebook's metadata gives.

What happened is recorded as plain sentences in the notebook's metadata under
``backprop_grading.events``, where the pipeline reads it for the summary.
"""

import copy
from time import monotonic

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from grader.repair import METADATA_KEY
from grader.sandbox import SandboxKernelManager


# Exit statuses of the kernel process: a negative one is the signal that ended it.
SIGNAL_CAUSES = {
    -9: "the process was killed (SIGKILL), for example by os.kill or for using too much memory",
    -6: "the process aborted (SIGABRT), often because a library could not get more memory",
    -11: "the process crashed with a segmentation fault (SIGSEGV)",
    -7: "the process crashed with a bus error (SIGBUS)",
    -15: "the process was terminated (SIGTERM)",
}


def death_cause(exit_status):
    """Describe in plain words why a kernel process ended, from its exit status (None if unknown)."""
    if exit_status is None:
        return "the kernel stopped answering"
    if exit_status in SIGNAL_CAUSES:
        return SIGNAL_CAUSES[exit_status]
    if exit_status < 0:
        return f"the process was ended by signal {-exit_status}"
    return (
        f"your code ended the Python process (exit status {exit_status}), for example with "
        "os._exit(), exit() or quit()"
    )


# Run silently before each test cell: undoes the usual ways student code changes how
# IPython runs and reports later cells, so that a test runs as written and its failure shows.
# NOTE: code that patches IPython's or ipykernel's classes, not the shell object, is not undone.
RESET_SHELL = """
def _reset_shell():
    import sys
    shell = get_ipython()
    shell.ast_transformers.clear()
    shell.input_transformers_post.clear()
    shell.set_custom_exc((), None)
    for name in ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                 "run_ast_nodes", "run_code", "transform_cell", "transform_ast"):
        vars(shell).pop(name, None)
    sys.excepthook = sys.__excepthook__
_reset_shell()
del _reset_shell
"""


def error_output(ename, message):
    """Return an nbformat error output that shows `message`; nbgrader gives 0 points to a cell with one."""
    return NotebookNode(output_type="error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def is_test_cell(cell):
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution")


def cell_name(cell, index):
    return f"cell {index + 1} ({grade_id(cell)})" if grade_id(cell) else f"cell {index + 1}"


class ExitRequested(Exception):
    """The cell called IPython's exit() or quit(), after which the kernel ends."""


class GradingExecute(Execute):
    """Execute every cell in a sandboxed kernel, with per-cell and per-notebook time limits, surviving a dead kernel."""

    notebook_timeout = Integer(
        300,
        help="The seconds all cells of one notebook may take together, kernel restarts included (0: no limit).",
    ).tag(config=True)

    max_restarts = Integer(
        3, help="How many times a new kernel is started for one notebook after its kernel died or timed out."
    ).tag(config=True)

    kernel_name = Unicode(
        "python3", help="The kernel that runs every submission, whatever its notebook's metadata names."
    ).tag(config=True)

    def __init__(self, **kw):
        kw["kernel_manager_class"] = SandboxKernelManager
        super().__init__(**kw)

    # -- the notebook ---------------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        """Run the notebook's cells one by one; a dead or stuck kernel is replaced, not fatal."""
        # As nbconvert's ExecutePreprocessor.preprocess (7.17), which this replaces.
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.events = []
        self.deadline = monotonic() + self.notebook_timeout if self.notebook_timeout > 0 else None
        self.restarts = 0
        self.stopped = None
        self.fatal_cells = set()
        self._last_reply = {}

        with self.setup_kernel():
            self._record_language_info()
            for index, cell in enumerate(self.nb.cells):
                self.run_cell(cell, index, resources)
        self.set_widgets_metadata()
        self.nb.metadata.setdefault(METADATA_KEY, {})["events"] = self.events
        return self.nb, self.resources

    def _record_language_info(self):
        info = self.wait_for_reply(self.kc.kernel_info())
        if info and "language_info" in info["content"]:
            self.nb.metadata["language_info"] = info["content"]["language_info"]

    def run_cell(self, cell, index, resources):
        """Run one cell, or mark it as not run when the kernel cannot go on."""
        if cell.cell_type != "code" or not cell.source.strip():
            return
        if self.stopped is None and self.deadline is not None and monotonic() >= self.deadline:
            self.stopped = (
                f"the notebook's time limit of {self.notebook_timeout} seconds was used up before this cell"
            )
            self.events.append(f"time limit of {self.notebook_timeout} s used up before {cell_name(cell, index)}")
        if self.stopped is not None:
            cell.outputs = [error_output("NotRun", f"This cell was not run: {self.stopped}.")]
            return
        self._last_reply = {}
        try:
            if is_test_cell(cell):
                self.wait_for_reply(self.kc.execute(RESET_SHELL, silent=True, store_history=False), cell)
            self.preprocess_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError) as error:
            self._handle_lost_kernel(cell, index, error)
            return
        self._fail_on_error_status(cell)
        if self._asked_exit():
            self._handle_lost_kernel(cell, index, ExitRequested())

    # -- timeouts and dead kernels ----------------------------------------------------------

    def _get_timeout(self, cell):
        """Return the cell's timeout, shortened to what is left of the notebook's time limit."""
        timeout = super()._get_timeout(cell)
        if self.deadline is None or cell is None:
            return timeout
        left = max(1, int(self.deadline - monotonic()) + 1)
        return left if timeout is None else min(timeout, left)

    async def _async_handle_timeout(self, timeout, cell=None):
        # Raise instead of interrupting: code that ignores SIGINT would keep the kernel busy
        # while the next cells wait, each until its own timeout.
        raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)

    def _handle_lost_kernel(self, cell, index, error):
        """Explain in the cell why it failed, then start a new kernel or stop the notebook."""
        self.fatal_cells.add(index)
        if isinstance(error, CellTimeoutError):
            out_of_time = self.deadline is not None and monotonic() >= self.deadline - 1
            if out_of_time:
                reason = f"the notebook's time limit of {self.notebook_timeout} seconds was used up during this cell"
            else:
                reason = f"this cell ran longer than its time limit of {self.timeout} seconds"
            cell.outputs.append(error_output("TimeoutError", f"{reason[0].upper()}{reason[1:]}. The kernel was stopped."))
            self.events.append(f"{cell_name(cell, index)} timed out ({reason})")
        elif isinstance(error, ExitRequested):
            cell.outputs.append(
                error_output(
                    "KernelDied",
                    "The kernel stopped after this cell: your code called exit() or quit(), which end the "
                    "kernel. Cells after it ran in a new kernel, without this cell.",
                )
            )
            self.events.append(f"the kernel died in {cell_name(cell, index)}: the code called exit() or quit()")
        else:
            cause = death_cause(self._exit_status())
            cell.outputs.append(
                error_output(
                    "KernelDied",
                    f"The kernel stopped while running this cell: {cause}. Cells after it ran in a new kernel.",
                )
            )
            self.events.append(f"the kernel died in {cell_name(cell, index)}: {cause}")
        self._restart(index)

    def _exit_status(self):
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return None if process is None else process.poll()

    def _restart(self, index):
        """Start a new kernel and rerun cells 0 to index-1 except test cells; or stop running cells."""
        if self.restarts >= self.max_restarts:
            # setup_kernel() shuts this last kernel down when the notebook is done.
            self.stopped = f"the kernel stopped {self.restarts + 1} times, more than the {self.max_restarts} restarts allowed"
            self.events.append(f"no more kernel restarts after {self.restarts}")
            return
        self.restarts += 1
        self._cleanup_kernel()
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        try:
            self._replay(index)
        except (DeadKernelError, CellTimeoutError) as error:
            self.stopped = f"the kernel could not be set up again after it stopped ({error})"
            self.events.append("the kernel could not be set up again after it stopped")

    def _replay(self, index):
        """Rerun the notebook's code cells before `index`, except test cells and cells that stopped a kernel."""
        for earlier, cell in enumerate(self.nb.cells[:index]):
            if cell.cell_type != "code" or is_test_cell(cell) or earlier in self.fatal_cells or not cell.source.strip():
                continue
            self.execute_cell(copy.deepcopy(cell), earlier, store_history=False)

    # -- failures the student's code may hide ------------------------------------------------

    def on_cell_executed(self, **kwargs):
        """Add an error output for an error reply without one (nbgrader's part), and keep the reply."""
        super().on_cell_executed(**kwargs)
        reply = kwargs["execute_reply"]
        self._last_reply = reply.get("content", {}) if reply else {}

    def _asked_exit(self):
        """Tell whether the last reply carries IPython's request to end the kernel (exit(), quit())."""
        payloads = self._last_reply.get("payload", [])
        return any(p.get("source") == "ask_exit" and not p.get("keepkernel") for p in payloads)

    def _fail_on_error_status(self, cell):
        """Make sure a cell whose reply was not "ok" has an error output, whatever its code printed."""
        status = self._last_reply.get("status", "ok")
        if status != "ok" and not any(output.output_type == "error" for output in cell.outputs):
            cell.outputs.append(error_output("CellFailed", f"The kernel reported this cell's status as {status!r}."))
