"""Reading a built app image: labels, layers, processes, files and the environment a process sees.

This is the only way the suite looks at a build's result. It reads what any CNB platform leaves
in an image (the `io.buildpacks.*` labels and the image config) and runs containers of the image,
so the same checks work on images made by the embedded platform and by `pack`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from conformance.engine import RunResult, ensure_engine, labels, run
from conformance.errors import ConformanceError
from conformance.platform.spec import BUILD_METADATA_LABEL as BUILD_METADATA
from conformance.platform.spec import LIFECYCLE_METADATA_LABEL as LIFECYCLE_METADATA

LAUNCHER = "/cnb/lifecycle/launcher"
_LAUNCH_ENV_CACHE: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, str]] = {}


@dataclass(frozen=True)
class ImageLayer:
    """A buildpack layer as recorded in the image's lifecycle metadata label."""

    buildpack_id: str
    name: str
    sha: str
    build: bool
    launch: bool
    cache: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def types(self) -> dict[str, bool]:
        return {"build": self.build, "launch": self.launch, "cache": self.cache}


def history_sizes(diff_ids: tuple[str, ...], history: list[dict[str, Any]]) -> dict[str, int]:
    """Match the engine's history (newest first) to the diffIDs (oldest first): entry for entry when
    the counts agree, else the entries with a size when exactly one per layer has one; else {}."""
    entries = list(reversed(history))
    if len(entries) != len(diff_ids):
        entries = [entry for entry in entries if entry.get("Size")]
    if len(entries) != len(diff_ids):
        return {}
    return {diff_id: int(entry.get("Size") or 0) for diff_id, entry in zip(diff_ids, entries, strict=True)}


@dataclass(frozen=True)
class AppImage:
    reference: str
    image_id: str
    config: dict[str, Any]
    diff_ids: tuple[str, ...]
    lifecycle_metadata: dict[str, Any]
    build_metadata: dict[str, Any]

    @classmethod
    def load(cls, reference: str) -> AppImage:
        try:
            attrs = ensure_engine().images.get(reference).attrs
        except docker.errors.ImageNotFound:
            raise ConformanceError(f"image {reference} does not exist", "build it first") from None
        config = attrs.get("Config") or {}
        labels = config.get("Labels") or {}
        if LIFECYCLE_METADATA not in labels:
            raise ConformanceError(
                f"image {reference} has no {LIFECYCLE_METADATA} label: it was not built by a CNB platform",
                "pass an image built with the embedded platform or with pack",
            )
        return cls(
            reference=reference,
            image_id=attrs["Id"],
            config=config,
            diff_ids=tuple(attrs.get("RootFS", {}).get("Layers") or ()),
            lifecycle_metadata=json.loads(labels[LIFECYCLE_METADATA]),
            build_metadata=json.loads(labels.get(BUILD_METADATA, "{}")),
        )

    # -- labels and metadata ----------------------------------------------------------------------

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def env(self) -> dict[str, str]:
        """The image config's environment (before the launcher adds the layers' env)."""
        return dict(item.split("=", 1) for item in self.config.get("Env") or [])

    @property
    def user(self) -> str:
        return str(self.config.get("User") or "")

    def layers(self, buildpack_id: str | None = None) -> list[ImageLayer]:
        found = []
        for bp in self.lifecycle_metadata.get("buildpacks") or []:
            if buildpack_id is not None and bp.get("key") != buildpack_id:
                continue
            for name, record in sorted((bp.get("layers") or {}).items()):
                found.append(
                    ImageLayer(
                        buildpack_id=bp["key"],
                        name=name,
                        sha=record.get("sha", ""),
                        build=bool(record.get("build")),
                        launch=bool(record.get("launch")),
                        cache=bool(record.get("cache")),
                        # a layer's metadata may be any TOML value (the lifecycle keeps it as is): tables only here
                        metadata=dict(data) if isinstance(data := record.get("data"), dict) else {},
                    )
                )
        return found

    def layer_sizes(self) -> dict[str, int]:
        """Each layer's size in bytes (its unpacked content, as the engine counts it), by diffID.

        The engine reports sizes only through the image history, whose entries also include steps
        that made no layer (size 0); a size is given only when the entries match the layers one to
        one, else {} (unknown, never a guess). See `history_sizes`.
        """
        history = ensure_engine().images.get(self.image_id).history()
        return history_sizes(self.diff_ids, history)

    def layer(self, buildpack_id: str, name: str) -> ImageLayer | None:
        return next((layer for layer in self.layers(buildpack_id) if layer.name == name), None)

    @property
    def buildpacks(self) -> list[tuple[str, str]]:
        return [(bp["key"], bp.get("version", "")) for bp in self.lifecycle_metadata.get("buildpacks") or []]

    @property
    def processes(self) -> list[dict[str, Any]]:
        return list(self.build_metadata.get("processes") or [])

    @property
    def default_process(self) -> str | None:
        return self.build_metadata.get("buildpack-default-process-type")

    # -- containers of the image ------------------------------------------------------------------

    def run(
        self,
        command: list[str],
        *,
        network: bool = False,
        user: str | None = None,
        via_launcher: bool = True,
        environment: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> RunResult:
        """Run `command` in a fresh container, through the launcher (as a direct command) by default,
        as the image's own user, without network unless asked."""
        entrypoint, args = ([LAUNCHER, "--"], command) if via_launcher else (command[:1], command[1:])
        return run(
            self.reference,
            args,
            entrypoint=entrypoint,
            user=user if user is not None else self.user,
            network_disabled=not network,
            environment=environment,
            timeout=timeout,
            kind="inspect",
        )

    def run_process(self, process_type: str, args: list[str] = (), **kwargs: Any) -> RunResult:  # type: ignore[assignment]
        """Start a declared process the way a platform would, via its `/cnb/process/<type>` link."""
        return run(
            self.reference,
            list(args),
            entrypoint=[f"/cnb/process/{process_type}"],
            user=kwargs.pop("user", self.user),
            network_disabled=not kwargs.pop("network", False),
            timeout=kwargs.pop("timeout", 120),
            kind="inspect",
            **kwargs,
        )

    def launch_env(self, environment: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a command started by the launcher sees (cached per image and input env)."""
        key = (self.image_id, tuple(sorted((environment or {}).items())))
        if key not in _LAUNCH_ENV_CACHE:
            result = self.run(["env", "-0"], environment=environment)
            if result.exit_code != 0:
                raise ConformanceError(f"`env` failed in {self.reference}: {result.output}")
            _LAUNCH_ENV_CACHE[key] = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
        return dict(_LAUNCH_ENV_CACHE[key])

    def read_file(self, path: str) -> str | None:
        """A file's text as the image's user sees it, or None when it does not exist."""
        result = self.run(["cat", path], via_launcher=False)
        return result.stdout if result.exit_code == 0 else None

    def path_exists(self, path: str) -> bool:
        return self.run(["test", "-e", path], via_launcher=False).exit_code == 0

    @contextmanager
    def serving(self, process_type: str, port: int, *, timeout: float = 60) -> Iterator[str]:
        """Start a long-running process (testcontainers) and yield its URL once it answers HTTP.

        The port is published on the host's loopback only; the container is labelled like every
        other harness resource and removed when the block ends.
        """
        from testcontainers.core.container import DockerContainer

        container = (
            DockerContainer(self.reference)
            .with_exposed_ports(port)
            .with_kwargs(entrypoint=[f"/cnb/process/{process_type}"], labels=labels("inspect"), user=self.user)
        )
        with container:
            url = f"http://127.0.0.1:{container.get_exposed_port(port)}/"
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=5):
                        break
                except (urllib.error.URLError, ConnectionError, OSError):
                    if time.monotonic() > deadline:
                        logs = container.get_logs()
                        raise ConformanceError(
                            f"process {process_type!r} of {self.reference} did not answer on port {port}"
                            f" within {timeout:.0f}s; its output: {logs}"
                        ) from None
                    time.sleep(0.5)
            yield url
