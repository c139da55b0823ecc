"""buildpack-conformance: a test harness and conformance suite for Python Cloud Native Buildpacks.

PYTEST_DONT_REWRITE (this file only): the wheel's pytest11 entry point makes pytest mark the whole
`conformance` package for assertion rewriting at start-up, and `bpconform run` runs pytest in the
process that has already imported this package; with nothing here to rewrite, the marker keeps
pytest from warning "Module already imported so cannot be rewritten: conformance" in every
pytest.log. The suite's modules are imported by pytest afterwards and rewritten as before.
"""

from __future__ import annotations

__version__ = "0.1.0"
