"""Unit tests of the reference buildpack's pure logic: import its package straight from lib/."""

from __future__ import annotations

import sys
from pathlib import Path

BUILDPACK_DIR = Path(__file__).resolve().parents[2] / "buildpack_under_test"
sys.path.insert(0, str(BUILDPACK_DIR / "lib"))
