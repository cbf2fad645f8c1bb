"""Submissions whose code attacks the grader: ending or crashing the kernel, hiding failures, touching files, exhausting resources.

Most cases answer both exercises correctly and add the attack, so that the points they
must keep show that only the attacked cells were lost. Attacks inside exercise2 fire when
it is called with a batch of more than one sample, which only the test cell ex2_fresh_data
(3 points) does.
"""

import copy
import socket

from corpus import FULL_MARKS, Case, sample_notebook, writer

CORRECT = sample_notebook("correct-loop")
SIGN_ERROR = sample_notebook("sign-error")
WITHOUT_FRESH_DATA = {cell: points for cell, points in FULL_MARKS.items() if cell != "ex2_fresh_data"}
EXERCISE2_ONLY = {cell: points for cell, points in FULL_MARKS.items() if cell.startswith("ex2")}
# The sign-error sample passes only ex1_norm (the printed value is a norm) and Exercise 2.
SIGN_ERROR_POINTS = {"ex1_norm": 2, **EXERCISE2_ONLY}

KERNEL_DIED = "The kernel stopped while running this cell"
TIMED_OUT = "ran longer than its time limit"


def cell_source(notebook, grade_id):
    return next(cell.source for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def changed(notebook=CORRECT, exercise1_suffix="", exercise2_prefix="", exercise2_attack=""):
    """Return a copy of `notebook` with code added to its answer cells.

    `exercise2_attack` runs inside exercise2 when it gets a batch of several samples;
    it is indented into the function's body.
    """
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "exercise1_answer" and exercise1_suffix:
            cell.source += "\n\n" + exercise1_suffix
        if grade_id == "exercise2_answer" and (exercise2_prefix or exercise2_attack):
            body = "    if X.shape[0] > 1:\n" + "".join(f"        {line}\n" for line in exercise2_attack.splitlines())
            source = cell.source.replace('    """\n', '    """\n' + (body if exercise2_attack else ""), 1)
            cell.source = exercise2_prefix + "\n" + source
    return notebook


# A listener of this test process on the loopback device, the only address the network case tries.
LISTENER = socket.create_server(("127.0.0.1", 0))
LISTENER.setblocking(False)
PORT = LISTENER.getsockname()[1]

# Paths relative to the kernel's working folder autograded/<student>/backprop/ of the course directory.
TAMPER = '''
import os, pathlib, sys
# The folder of the hidden tests' library is on sys.path; the repository is two levels up.
kernel_folder = next(pathlib.Path(entry) for entry in sys.path if entry.rstrip("/").endswith("grader/kernel"))
targets = {
    "gradebook": "../../../gradebook.db",
    "source notebook": "../../../source/backprop/backprop.ipynb",
    "submission of correct-loop": "../../../submitted/correct-loop/backprop/backprop.ipynb",
    "solution.py": str(kernel_folder.parents[1] / "solution.py"),
}
for name, path in targets.items():
    try:
        os.remove(path)
        print(f"removed the {name}")
    except OSError as error:
        print(f"cannot remove the {name}: {type(error).__name__}")
    try:
        pathlib.Path(path).write_text("tampered")
        print(f"wrote the {name}")
    except OSError as error:
        print(f"cannot write the {name}: {type(error).__name__}")
'''

READ_SOLUTION = '''
import pathlib, sys
try:
    kernel_folder = next(pathlib.Path(entry) for entry in sys.path if entry.rstrip("/").endswith("grader/kernel"))
    exec(kernel_folder.parents[1].joinpath("solution.py").read_text())
    print("read solution.py")
except OSError as error:
    print(f"cannot read solution.py: {type(error).__name__}")
    def exercise1(*arguments):
        return None, None
'''

NETWORK = f'''
import socket
try:
    socket.create_connection(("127.0.0.1", {PORT}), timeout=5).close()
    print("connected to the grader's machine")
except OSError as error:
    print(f"no network: {{error}}")
'''

HIDE_TRACEBACKS = '''
import sys
from IPython import get_ipython
from IPython.display import clear_output
shell = get_ipython()
def quiet(*arguments, **keywords):
    clear_output()
    print("All tests passed.")
shell.showtraceback = quiet
shell._showtraceback = quiet
shell.showsyntaxerror = quiet
sys.excepthook = quiet
'''

# Wraps every later cell in try/except, so that no assert could fail.
SWALLOW_ERRORS = '''
import ast
from IPython import get_ipython
class Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)
get_ipython().ast_transformers.append(Swallow())
'''

CUSTOM_EXCEPTION_HANDLER = '''
from IPython import get_ipython
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: print("ok"))
'''

# A sleep with an argument no other process has, so that tests can look for it.
DAEMON_MARKER = "1000.0042"
DAEMON = f'''
import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{DAEMON_MARKER}"])
    os._exit(0)
os.wait()
'''

FORK_BOMB = '''
import os, subprocess, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        children += 1
except OSError:
    pass
while True:
    subprocess.Popen(["sleep", "1000"])
'''

MEMORY_BOMB = '''
try:
    numpy.ones(10**11)
except MemoryError as error:
    print(f"numpy.ones(10**11) failed: {type(error).__name__}")
chunks = []
while True:
    chunks.append(bytearray(10**7))
'''

CASES = [
    # The kernel ends during one test cell: that cell fails, the cells after it run in a new kernel.
    Case(
        "hostile-os-exit",
        writer(changed(exercise2_prefix="import os", exercise2_attack="os._exit(3)")),
        points=WITHOUT_FRESH_DATA,
        feedback=[KERNEL_DIED, "exit status 3"],
        summary=["the kernel died in cell", "ex2_fresh_data"],
    ),
    Case(
        "hostile-segfault",
        writer(changed(exercise2_prefix="import ctypes", exercise2_attack="ctypes.string_at(0)")),
        points=WITHOUT_FRESH_DATA,
        feedback=[KERNEL_DIED, "segmentation fault"],
        summary=["the kernel died in cell"],
    ),
    # IPython's exit() ends the kernel once the cell is done. The new kernel runs the earlier
    # cells but not this one, so exercise1 is not defined there.
    Case(
        "hostile-exit-builtin",
        writer(changed(exercise1_suffix="exit()")),
        points=EXERCISE2_ONLY,
        feedback=["your code called exit() or quit()"],
        summary=["exercise1_answer", "called exit() or quit()"],
    ),
    # Inside the sandbox the kernel is PID 1 of its namespace, which ignores signals it sends itself.
    Case(
        "hostile-kill-self",
        writer(changed(exercise2_prefix="import os, signal", exercise2_attack="os.kill(os.getpid(), signal.SIGKILL)")),
        points=FULL_MARKS,
    ),
    Case(
        "hostile-sys-exit",
        writer(changed(exercise2_prefix="import sys", exercise2_attack="sys.exit(0)")),
        points=WITHOUT_FRESH_DATA,
        feedback=["SystemExit"],
    ),
    # Failing tests stay failed when the code hides tracebacks or handles every exception itself.
    Case(
        "hostile-hidden-failures",
        writer(changed(SIGN_ERROR, exercise1_suffix=HIDE_TRACEBACKS + CUSTOM_EXCEPTION_HANDLER)),
        points=SIGN_ERROR_POINTS,
    ),
    Case("hostile-swallowed-errors", writer(changed(SIGN_ERROR, exercise1_suffix=SWALLOW_ERRORS)), points=SIGN_ERROR_POINTS),
    # Files outside the kernel's private working folder, and the network, do not exist for it.
    Case(
        "hostile-escape",
        writer(changed(exercise1_suffix=TAMPER + NETWORK)),
        points=FULL_MARKS,
        feedback=[
            "cannot remove the gradebook: FileNotFoundError",
            "cannot write the solution.py",
            "cannot write the submission of correct-loop",
            "no network: [Errno 101] Network is unreachable",
        ],
    ),
    Case(
        "hostile-read-solution",
        writer(changed(exercise1_suffix=READ_SOLUTION)),
        points=EXERCISE2_ONLY,
        feedback=["cannot read solution.py: FileNotFoundError"],
    ),
    # Resource exhaustion costs the cell that caused it.
    Case(
        "hostile-infinite-loop",
        writer(changed(exercise2_prefix="import signal", exercise2_attack="signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")),
        points=WITHOUT_FRESH_DATA,
        feedback=[TIMED_OUT],
        summary=["ex2_fresh_data) timed out"],
    ),
    Case(
        "hostile-memory-bomb",
        writer(changed(exercise2_prefix="import numpy", exercise2_attack=MEMORY_BOMB)),
        points=WITHOUT_FRESH_DATA,
        feedback=["numpy.ones(10**11) failed: MemoryError", "MemoryError"],
    ),
    # A daemon and a fork bomb: the process limit stops the bomb, and all of them end with the kernel.
    Case(
        "hostile-processes",
        writer(changed(exercise2_attack=DAEMON + FORK_BOMB)),
        points=WITHOUT_FRESH_DATA,
        feedback=["BlockingIOError"],
    ),
]
