"""The conformance report, by its old name: re-exports of `results`, `render`, `compare` and `run`.

The report code is split by concern: collecting results (`conformance.results`), rendering them
(`conformance.render`), comparing two runs (`conformance.compare`) and the `bpconform run` command
(`conformance.run`). This module only keeps old imports working.
"""

from __future__ import annotations

from conformance.compare import *  # noqa: F403
from conformance.render import *  # noqa: F403
from conformance.results import *  # noqa: F403
from conformance.run import *  # noqa: F403
