"""buildpack-conformance: a test harness and conformance suite for Python Cloud Native Buildpacks."""

from __future__ import annotations

__version__ = "0.1.0"
