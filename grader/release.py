"""Build the student release from source/ and tell whether the committed release is stale."""

import filecmp
import logging
import shutil
import tempfile
from pathlib import Path

from grader import ASSIGNMENT, RELEASE_DIRECTORY
from grader.course import Course

log = logging.getLogger(__name__)


def build_release(scratch_root):
    """Generate the release in a scratch course directory and return its release folder."""
    return Course(scratch_root).open().generate_release()


def differing_files(built, committed):
    """List the relative paths that differ between two release folders, missing files included."""
    built, committed = Path(built), Path(committed)
    built_files = {p.relative_to(built) for p in built.rglob("*") if p.is_file()}
    committed_files = (
        {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()} if committed.is_dir() else set()
    )
    differing = built_files ^ committed_files
    for relative in built_files & committed_files:
        if not filecmp.cmp(built / relative, committed / relative, shallow=False):
            differing.add(relative)
    return sorted(str(p) for p in differing)


def stale_release_files():
    """Generate the release in a scratch folder and list the files where release/backprop/ differs."""
    with tempfile.TemporaryDirectory(prefix="backprop-release-") as scratch:
        return differing_files(build_release(scratch), RELEASE_DIRECTORY)


def update_repository_release():
    """Regenerate release/backprop/ of the repository from source/; return the changed paths."""
    with tempfile.TemporaryDirectory(prefix="backprop-release-") as scratch:
        built = build_release(scratch)
        changed = differing_files(built, RELEASE_DIRECTORY)
        if changed:
            if RELEASE_DIRECTORY.exists():
                shutil.rmtree(RELEASE_DIRECTORY)
            shutil.copytree(built, RELEASE_DIRECTORY)
            log.info("Updated %s: %s", RELEASE_DIRECTORY, ", ".join(changed))
        else:
            log.info("%s is up to date with the source", RELEASE_DIRECTORY)
    return changed


def release_snapshot():
    """Return the bytes of every file of the repository's release, by relative path."""
    return {p.relative_to(RELEASE_DIRECTORY): p.read_bytes() for p in RELEASE_DIRECTORY.rglob("*") if p.is_file()}


def generate_and_check_release(course):
    """Generate the release in the course directory and warn when the repository's release is stale."""
    before = release_snapshot() if course.is_repository else None
    course.generate_release()
    if course.is_repository:
        if release_snapshot() != before:
            log.warning(
                "release/%s was stale and has been regenerated from source/%s; commit it, "
                "so that students get the version that is graded", ASSIGNMENT, ASSIGNMENT,
            )
        return
    stale = differing_files(course.release_directory, RELEASE_DIRECTORY)
    if stale:
        log.warning(
            "release/%s of the repository differs from its source in %s; students may have an old "
            "version. Run: python -m grader release",
            ASSIGNMENT,
            ", ".join(stale),
        )
