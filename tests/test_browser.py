"""The student's path in a real browser: Jupyter Notebook 7 with nbgrader's Validate button.

A Jupyter server runs on 127.0.0.1 in a scratch copy of release/backprop/, and headless
Chromium fills in the answer cells, runs all cells and presses Validate. The browser is
Debian's package at /usr/bin/chromium, which .ci/run installs, so Playwright never
downloads one.
Screenshots go to $ARTIFACTS_DIR, or to a pytest temporary folder when it is unset.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import REPOSITORY, SAMPLES, free_port, nbgrader_environment

# samples/build_samples.py reads the answer files, but samples/ is not on the import path.
sys.path.insert(0, str(SAMPLES))
from build_samples import read_functions  # noqa: E402

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RELEASE = REPOSITORY / "release" / "backprop"
ANSWERS = SAMPLES / "answers"

# Timeouts of the page in milliseconds. They are generous because Restart and Run All
# imports torch, and Validate runs the whole notebook again in a new kernel on the server.
RUN_TIMEOUT = 120_000
PAGE_TIMEOUT = 60_000
SERVER_START_TIMEOUT = 60  # seconds

VALIDATE_SUCCESS = "Success! Your notebook passes all the tests."

# The URL path under which each interface opens a notebook.
INTERFACES = {"notebook7": "notebooks", "jupyterlab4": "lab/tree"}


def wait_for_server(process, url, token, log_path):
    """Poll the server's status API until it responds, and fail with its log if it exits or stalls."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter notebook exited with status {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"jupyter notebook did not respond at {url} within {SERVER_START_TIMEOUT} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def notebook_server(tmp_path_factory):
    """Start `jupyter notebook` on 127.0.0.1 with a token, and return its URL, token and root folder.

    The root folder holds one scratch copy of release/backprop/ per test. Jupyter's
    config, data and runtime folders are temporary too, so the server reads only the
    settings that requirements.txt installs into the environment, nbgrader's included.
    """
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "root"
    root.mkdir()
    environment = nbgrader_environment()
    for variable, folder in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
    ]:
        environment[variable] = str(base / folder)

    port = free_port()
    token = secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}"
    log_path = base / "server.log"
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "notebook",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_server(process, url, token, log_path)
        yield url, token, root
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install chromium), as .ci/run does.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGUMENTS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Return the folder for screenshots: $ARTIFACTS_DIR, or a pytest temporary folder."""
    folder = Path(os.environ["ARTIFACTS_DIR"]) if os.environ.get("ARTIFACTS_DIR") else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def student_page(browser, notebook_server, artifacts, request):
    """Open a fresh scratch copy of the release notebook and wait for its kernel.

    The interface is Notebook 7 unless the test passes another key of INTERFACES as an
    indirect parameter. Returns the page and the notebook's path on disk. Requests to
    any host other than the test's server are blocked and listed, and the test fails if
    there were any.
    """
    url, token, root = notebook_server
    interface = getattr(request, "param", "notebook7")
    folder = root / re.sub(r"\W", "-", request.node.name)
    shutil.copytree(RELEASE, folder, copy_function=shutil.copyfile)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT)
    blocked = []

    def keep_on_loopback(route):
        if route.request.url.startswith(url + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", keep_on_loopback)
    page = context.new_page()
    page.goto(f"{url}/{INTERFACES[interface]}/{folder.name}/backprop.ipynb?token={token}")
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle", timeout=RUN_TIMEOUT)
    yield page, folder / "backprop.ipynb"
    page.screenshot(path=artifacts / f"{folder.name}-end.png")
    context.close()
    assert blocked == [], f"the page requested other hosts: {blocked}"


def code_cell(page, text):
    """Return the code cell whose input contains `text`, and check that there is exactly one."""
    cells = page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text=text))
    expect(cells).to_have_count(1)
    return cells


def fill_answer(page, function_name, source):
    """Replace the answer cell that defines `function_name` with `source`, as a paste would."""
    cell = code_cell(page, f"def {function_name}(")
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(source)
    page.keyboard.press("Escape")
    expect(cell.locator(".jp-InputArea")).to_contain_text("return")


def restart_and_run_all(page):
    """Use the menu Kernel > Restart Kernel and Run All Cells, then wait until no cell is queued.

    The wait relies on the prompts of a notebook that has not run yet: they are all empty
    until the run starts, which marks every cell [*] at once.
    """
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.get_by_role("menuitem", name=re.compile("Restart Kernel and Run All Cells")).click()
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    # Queued and running cells show [*]. The run is over when none does and one has a number.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            return prompts.some(p => /\\[\\d+\\]/.test(p)) && !prompts.some(p => p.includes('*'));
        }""",
        timeout=RUN_TIMEOUT,
    )
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle", timeout=RUN_TIMEOUT)


def output_text(page, input_text):
    """Return the text of the outputs of the code cell whose input contains `input_text`."""
    cell = code_cell(page, input_text)
    cell.scroll_into_view_if_needed()
    # textContent, because Notebook 7 skips rendering cells outside the view (CSS
    # content-visibility), and innerText is empty for those.
    return cell.locator(".jp-OutputArea").text_content().strip()


def press_validate(page):
    """Press nbgrader's Validate button and return the dialog with its result."""
    page.locator(".validate-button").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator("#validation-message")).to_be_visible(timeout=RUN_TIMEOUT)
    return dialog


def close_dialog(page):
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)


def saved_answer(notebook_path, grade_id):
    """Read the source of an answer cell from the notebook file that Jupyter saved."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise LookupError(f"{notebook_path} has no cell with grade_id {grade_id}")


@pytest.mark.parametrize("student_page", list(INTERFACES), indirect=True)
def test_correct_answer_prints_norms_and_validates(student_page, artifacts, request):
    page, notebook_path = student_page
    interface = request.node.callspec.params["student_page"]
    answers = read_functions(ANSWERS / "correct-loop.py")
    fill_answer(page, "exercise1", answers["exercise1"])
    fill_answer(page, "exercise2", answers["exercise2"])

    restart_and_run_all(page)

    assert "Traceback" not in page.locator(".jp-Notebook").text_content()
    assert output_text(page, "print(np.linalg.norm(DW[0][0, 0]))") == "1.5422821523392451"
    page.screenshot(path=artifacts / f"answered-{interface}.png")
    assert output_text(page, "print(np.linalg.norm(W_torch[0].grad[0, 0]))") == "1.5422821"

    dialog = press_validate(page)
    expect(dialog.locator("#validation-message.validation-success")).to_have_text(VALIDATE_SUCCESS)
    page.screenshot(path=artifacts / f"validated-{interface}.png")
    close_dialog(page)

    # Validate saved the notebook first, so the file shows exactly what the browser typed.
    assert saved_answer(notebook_path, "exercise1_answer") == answers["exercise1"]
    assert saved_answer(notebook_path, "exercise2_answer") == answers["exercise2"]


def test_wrong_answer_fails_visible_test(student_page, artifacts):
    page, notebook_path = student_page
    answers = read_functions(ANSWERS / "missing-factor-two.py")
    fill_answer(page, "exercise1", answers["exercise1"])
    fill_answer(page, "exercise2", answers["exercise2"])

    restart_and_run_all(page)

    # Without the factor 2 every gradient is half the right value.
    assert output_text(page, "print(np.linalg.norm(DW[0][0, 0]))") == "0.7711410761696226"
    failing = output_text(page, "# The printed value |DW[0][0, 0]| (2 points)")
    assert "AssertionError: |DW[0][0, 0]| should be 1.5422821523392451, but it is 0.7711410761696226." in failing
    page.screenshot(path=artifacts / "failing.png")

    dialog = press_validate(page)
    message = dialog.locator("#validation-message.validation-failed")
    expect(message).to_contain_text("The following cell failed:")
    expect(message).to_contain_text("should be 1.5422821523392451, but it is 0.7711410761696226.")
    text = message.text_content()
    assert "\x1b[" not in text, "the message shows raw ANSI colour codes"
    assert "Success!" not in text
    page.screenshot(path=artifacts / "failing-validate.png")
    close_dialog(page)

    assert saved_answer(notebook_path, "exercise1_answer") == answers["exercise1"]
