"""Fixtures for the hostile-buildpack corpus: a buildpack tries to reach a host file, the host must not.

Every case has a *sentinel*: host files of known random content outside the build's work dir (a
world-readable one and a root-only 0600 one, like /etc/shadow), plus a victim file an attack tries to
overwrite. A hostile buildpack is written by the test itself (POSIX sh `bin/detect` and `bin/build`
on the stack's build image; no Python needed), pointing links at the sentinel's *host* paths: inside
the container those paths do not exist, so only a host that follows the link could reach them.

`Attack.check` then asserts what every case must hold: the sentinel's content is in no build log,
no error, no report, no image file under /layers, /workspace or /cnb, no label or image config, no
file of the build cache; no host file in the sentinel dir changed; any failure is a clear error
(a ConformanceError with a hint, no traceback); and nothing leaked (the reliability `LeakGuard`).

Fixtures reused, not copied: `stack`, `builder` (tests/platform_integration), `work_root`,
`leak_guard`, `assert_clear_error` (tests/reliability).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import stat
import tarfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from platform_integration.conftest import Builder, builder, stack  # noqa: F401 (fixtures)
from reliability.conftest import LeakGuard, assert_clear_error, leak_guard, scratch_root, work_root  # noqa: F401 (fixtures)

from conformance.access import PackageAccess
from conformance.engine import ensure_engine
from conformance.errors import ConformanceError
from conformance.platform.creator import BuildResult

IMAGE_DIRS = ("/layers", "/workspace", "/cnb")


@dataclass
class Sentinel:
    """Host files a hostile buildpack must never read or change (all under `dir`)."""

    dir: Path
    token: str

    @property
    def public(self) -> Path:
        return self.dir / "secret.txt"

    @property
    def root_only(self) -> Path:
        return self.dir / "shadow"

    @property
    def victim(self) -> Path:
        return self.dir / "victim.txt"

    @property
    def toml(self) -> Path:
        return self.dir / "host.toml"

    def needles(self) -> list[bytes]:
        return [self.token.encode(), self.token[::-1].encode()]

    def snapshot(self) -> dict[str, tuple[int, int, int, int, str]]:
        """Every entry below the sentinel dir, itself included: (mode, uid, size, mtime, sha256)."""
        found = {}
        for entry in [self.dir, *sorted(self.dir.rglob("*"))]:
            st = entry.lstat()
            digest = hashlib.sha256(entry.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
            found[str(entry)] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, digest)
        return found


@pytest.fixture
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Sentinel:
    """Outside the test's tmp_path (so outside the build's work dir and cache)."""
    base = tmp_path_factory.mktemp("host-secret")
    token = "SENTINEL-" + secrets.token_hex(16)
    made = Sentinel(base, token)
    made.public.write_text(f"{token}\n")
    made.root_only.write_text(f"root:{token[::-1]}:19000:0:99999:7:::\n")
    made.root_only.chmod(0o600)
    made.victim.write_text("the victim's original content\n")
    made.toml.write_text(f'[types]\nlaunch = true\ncache = true\n[metadata]\nsecret = "{token}"\n')
    (base / "subdir").mkdir()
    (base / "subdir" / "inner.txt").write_text(f"{token}\n")
    return made


def write_buildpack(root: Path, short: str, build: str, detect: str = "", api: str = "0.10") -> Path:
    """A buildpack `hostile/<short>` whose bin/build runs `build` (and bin/detect `detect`) under
    `set -eu`, as POSIX sh; `$1` etc. are the CNB arguments."""
    bp = root / f"bp-{short}"
    (bp / "bin").mkdir(parents=True)
    (bp / "buildpack.toml").write_text(
        textwrap.dedent(
            f"""\
            api = "{api}"

            [buildpack]
            id = "hostile/{short}"
            version = "0.0.1"

            [[targets]]
            os = "linux"
            """
        )
    )
    for name, body in (("detect", detect), ("build", build)):
        script = bp / "bin" / name
        script.write_text("#!/bin/sh\nset -eu\n" + textwrap.dedent(body).strip() + "\nexit 0\n")
        script.chmod(0o755)
    return bp


@dataclass
class Outcome:
    result: BuildResult | None
    error: BaseException | None
    image: str

    @property
    def output(self) -> str:
        if self.result is not None:
            return self.result.output
        return getattr(self.error, "build_output", "") or ""


@dataclass
class Attack:
    """One hostile case: buildpacks, a build, and the checks every case shares."""

    builder: Builder
    sentinel: Sentinel
    guard: LeakGuard
    tmp_path: Path
    before: dict[str, tuple[int, int, int, int, str]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.before = self.sentinel.snapshot()

    def buildpack(self, short: str, build: str, detect: str = "") -> Path:
        return write_buildpack(self.tmp_path / "buildpacks", short, build, detect)

    def app(self, files: dict[str, str] | None = None, name: str = "app") -> Path:
        root = self.tmp_path / name
        root.mkdir(exist_ok=True)
        for rel, text in (files or {"README": "an app\n"}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return root

    def build(self, buildpacks: list[Path], app: Path | None = None, **options: object) -> Outcome:
        """Build; a failure is recorded (and checked to be a clear error by `check`), never raised."""
        image = options.pop("image", None) or self.builder.image_name()
        app = app or self.app()
        wheels = self.tmp_path / "no-wheels"
        wheels.mkdir(exist_ok=True)
        options.setdefault("access", PackageAccess("offline", wheelhouse=wheels))  # no network for hostile code
        try:
            result = self.builder.build(app, [str(bp) for bp in buildpacks], image=image, **options)
            outcome = Outcome(result, None, str(image))
        except Exception as exc:  # judged in check(): must be a clear ConformanceError
            outcome = Outcome(None, exc, str(image))
        self.outcomes.append(outcome)
        return outcome

    def check(self, *needles: str, allowed_images: tuple[str, ...] = ()) -> None:
        """The shared assertions; each failed build's error must name `needles`."""
        for outcome in self.outcomes:
            if outcome.error is not None:
                assert_clear_error(outcome.error, *needles)
                assert isinstance(outcome.error, ConformanceError)
            self._assert_no_sentinel(outcome)
        assert self.sentinel.snapshot() == self.before, "a host file outside the work dir changed"
        for outcome in self.outcomes:
            self._assert_no_sentinel_in_image(outcome.image)
        self._assert_no_sentinel_in_dir(self.tmp_path, "the build caches and the test's dirs")
        built = [o.image for o in self.outcomes if o.result is not None]
        self.guard.assert_clean(allowed_images=(*built, *allowed_images))

    # -- where the sentinel must not be -----------------------------------------------------------

    def _contains(self, data: bytes) -> bool:
        return any(needle in data for needle in self.sentinel.needles())

    def _assert_no_sentinel(self, outcome: Outcome) -> None:
        texts = [outcome.output, str(outcome.error or "")]
        if outcome.result is not None:
            report = {
                "layers": [vars(layer) for layer in outcome.result.layers],
                "build_env": outcome.result.build_env,
                "group": outcome.result.group,
            }
            texts.append(json.dumps(report, default=str))
        assert not self._contains("\n".join(texts).encode()), "the sentinel reached the build log, error or report"

    def _assert_no_sentinel_in_image(self, reference: str) -> None:
        client = ensure_engine()
        try:
            image = client.images.get(reference)
        except Exception:  # the build failed before export: no image to search
            return
        assert not self._contains(json.dumps(image.attrs).encode()), f"the sentinel is in {reference}'s config/labels"
        container = client.containers.create(image.id, command=["true"], entrypoint=["true"])
        try:
            for path in IMAGE_DIRS:
                with contextlib.suppress(Exception):  # no such dir in this image
                    stream, _ = container.get_archive(path)
                    data = b"".join(stream)
                    assert not self._contains(data), f"the sentinel is in {reference}:{path}"
        finally:
            container.remove(force=True)

    def _assert_no_sentinel_in_dir(self, root: Path, what: str) -> None:
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = Path(directory) / name
                if path.is_symlink() or not path.is_file():
                    continue
                with contextlib.suppress(OSError):
                    assert not self._contains(path.read_bytes()), f"the sentinel is in {path} ({what})"

    def image_entry(self, reference: str, path: str) -> tarfile.TarInfo:
        """The tar header of `path` in the built image (to see that a link stayed a link)."""
        client = ensure_engine()
        container = client.containers.create(reference, command=["true"], entrypoint=["true"])
        try:
            stream, _ = container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                return archive.getmembers()[0]
        finally:
            container.remove(force=True)


@pytest.fixture
def attack(builder: Builder, sentinel: Sentinel, leak_guard: LeakGuard, tmp_path: Path) -> Iterator[Attack]:  # noqa: F811
    yield Attack(builder, sentinel, leak_guard, tmp_path)
