import sys

from grader.cli import main

# The guard keeps worker processes, which import this module again when they start, from running the command.
if __name__ == "__main__":
    sys.exit(main())
