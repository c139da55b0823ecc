"""Writing CNB layer env files.

CNB env files have no default delimiter: a `.prepend` without a `.delim` file is glued on with no
separator. So this module only writes `.override` / `.default`, or a prepend/append together with
its `.delim` file.
"""

from __future__ import annotations

import re
from pathlib import Path

SCOPES = ("env", "env.build", "env.launch")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_env(
    layer_dir: Path, scope: str, name: str, value: str, action: str = "override", delim: str | None = None
) -> Path:
    """Write `<layer>/<scope>/<NAME>.<action>`; prepend/append require an explicit delimiter."""
    if scope not in SCOPES and not scope.startswith("env.launch/"):
        raise ValueError(f"unknown env scope {scope!r}")
    if not _NAME.match(name):
        raise ValueError(f"not an environment variable name: {name!r}")
    if action not in ("override", "default", "prepend", "append"):
        raise ValueError(f"unknown env action {action!r}")
    if action in ("prepend", "append") and delim is None:
        raise ValueError(f"{name}.{action} needs a delimiter: CNB env files have no default one")
    directory = layer_dir / scope
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.{action}"
    path.write_text(value, encoding="utf-8")
    if delim is not None:
        (directory / f"{name}.delim").write_text(delim, encoding="utf-8")
    return path
