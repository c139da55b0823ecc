"""Entry point used by bin/detect and bin/build (run with `python3 -I`, so sys.path is set here)."""

import os
import sys

if sys.version_info < (3, 11):  # noqa: UP036 -- run.py itself must work on any python3
    sys.stderr.write(
        f"\n[Error: Python 3.11+ needed to run the buildpack]\nbpconform/python runs on the build image's python3, "
        f"which must be 3.11 or newer (it is {sys.version.split()[0]}).\n"
    )
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bpconform_python.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
