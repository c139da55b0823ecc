"""Export: turn the run image plus launch layers into a real image in the Docker engine.

The image is handed to the engine as a `docker load` archive that we stream ourselves: a
manifest, an OCI-style image config and one uncompressed tar per new layer. Layers whose chain
(the layer and everything under it) the engine already holds, the run image's and those reused
unchanged from the previous build, are listed in the manifest but not sent: the engine skips a
layer it already has, so an unchanged layer is neither re-tarred nor re-loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors

from conformance.engine import KIND, MANAGED, PERSISTENT_KINDS, ensure_engine
from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.archive import NORMALIZED_MTIME

CREATED = "1980-01-01T00:00:01Z"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BaseImage:
    """What the exporter needs from the run image (or the previous app image)."""

    reference: str
    image_id: str
    diff_ids: tuple[str, ...]
    config: dict[str, Any]
    os: str
    architecture: str
    labels: dict[str, str]

    @classmethod
    def inspect(cls, reference: str) -> BaseImage:
        try:
            attrs = ensure_engine().images.get(reference).attrs
        except docker.errors.ImageNotFound:
            raise PlatformError(
                f"run image {reference} is not in the Docker engine",
                "build the stack first (`bpconform stack build <name>`) or pass an existing run image",
                spec.ExitCode.EXPORT_ERROR,
            ) from None
        config = attrs.get("Config") or {}
        return cls(
            reference=reference,
            image_id=attrs["Id"],
            diff_ids=tuple(attrs.get("RootFS", {}).get("Layers") or ()),
            config=config,
            os=attrs.get("Os", "linux"),
            architecture=attrs.get("Architecture", "amd64"),
            labels=dict(config.get("Labels") or {}),
        )


@dataclass(frozen=True)
class NewLayer:
    """A layer of the app image above the run image: its diffID and, if it has to be sent, its tar."""

    diff_id: str
    tar: Path | None
    created_by: str


@dataclass
class ExportResult:
    image_id: str
    reference: str
    sent_layers: list[str] = field(default_factory=list)
    skipped_layers: list[str] = field(default_factory=list)
    sent_bytes: int = 0


def check_build_target(reference: str, *stack_images: str) -> None:
    """Refuse to write the app image over a stack image: a run or build image replaced by an app
    image makes every later build stack layers on layers, and `bpconform clean` would then delete
    the "stack". Compared by name (with `:latest` filled in) and by what the name points to now."""
    target = with_tag(reference)
    protected = {with_tag(image) for image in stack_images}
    if target in protected:
        raise PlatformError(
            f"the image to build, {reference}, is one of the stack's images ({', '.join(sorted(protected))})",
            "name the app image something else (e.g. bpconform build my-app ...); a build never replaces a stack image",
        )
    try:
        existing = ensure_engine().images.get(target)
    except docker.errors.ImageNotFound:
        return
    except docker.errors.APIError:  # cannot tell: the export will fail clearly if the engine is unwell
        return
    existing_labels = (existing.attrs.get("Config") or {}).get("Labels") or {}
    stack_ids = set()
    for image in stack_images:
        with contextlib.suppress(docker.errors.DockerException):
            stack_ids.add(ensure_engine().images.get(image).id)
    if existing.id in stack_ids or (
        existing_labels.get(MANAGED) == "true" and existing_labels.get(KIND) in PERSISTENT_KINDS
    ):
        raise PlatformError(
            f"the image to build, {reference}, is a stack image (the harness keeps it as a base image)",
            "name the app image something else (e.g. bpconform build my-app ...); a build never replaces a stack image",
        )


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """The engine identifies a stored layer by its chain ID: a hash over it and all layers below."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def image_config(
    base: BaseImage,
    layers: list[NewLayer],
    *,
    env: list[str],
    entrypoint: list[str],
    labels: dict[str, str],
    working_dir: str,
    user: str,
) -> dict[str, Any]:
    """The image config JSON: the run image's config with the platform's changes on top."""
    config = {
        key: value
        for key, value in base.config.items()
        if key in ("ExposedPorts", "StopSignal", "Volumes", "Shell") and value
    }
    config.update(
        {
            "Env": env,
            "Entrypoint": entrypoint,
            "Cmd": None,
            "WorkingDir": working_dir,
            "User": user,
            "Labels": dict(sorted({**base.labels, **labels}.items())),
        }
    )
    history = [{"created": CREATED, "created_by": "run image layer"} for _ in base.diff_ids]
    history += [{"created": CREATED, "created_by": layer.created_by} for layer in layers]
    return {
        "architecture": base.architecture,
        "os": base.os,
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [*base.diff_ids, *(layer.diff_id for layer in layers)]},
        "history": history,
    }


def export_image(
    reference: str,
    base: BaseImage,
    layers: list[NewLayer],
    config: dict[str, Any],
    known_chains: set[str],
    previous_image: str | None = None,
) -> ExportResult:
    """Load the image into the engine, sending only layers whose chain the engine lacks.

    A layer reused from `previous_image` without a tar of ours (a launch layer the buildpack kept
    by leaving no directory) is fetched from that image when something below it changed.
    """
    reference = with_tag(reference)
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    all_diff_ids = [*base.diff_ids, *(layer.diff_id for layer in layers)]
    chains = chain_ids(all_diff_ids)
    known = known_chains | set(chain_ids(base.diff_ids))
    result = ExportResult(image_id=image_id, reference=reference)

    scratch = _Scratch()
    try:
        _send_and_load(reference, base, layers, config_bytes, image_id, chains, known, previous_image, scratch, result)
    finally:
        scratch.remove()  # a `docker save` of the previous image is as big as the image: never leave it
    return result


class _Scratch:
    """A temp dir made only when a reused layer must be pulled out of the previous image."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def get(self) -> Path:
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="bpconform-save-"))
        return self.path

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def _send_and_load(
    reference: str,
    base: BaseImage,
    layers: list[NewLayer],
    config_bytes: bytes,
    image_id: str,
    chains: list[str],
    known: set[str],
    previous_image: str | None,
    scratch: _Scratch,
    result: ExportResult,
) -> None:
    all_diff_ids = [*base.diff_ids, *(layer.diff_id for layer in layers)]
    to_send: list[tuple[str, Path]] = []
    for index, layer in enumerate(layers, start=len(base.diff_ids)):
        if chains[index] in known:
            result.skipped_layers.append(layer.diff_id)
            continue
        tar = layer.tar or _layer_from_image(previous_image, layer, scratch.get() / f"reused-{index}")
        to_send.append((_layer_member(layer.diff_id), tar))
        result.sent_layers.append(layer.diff_id)
        result.sent_bytes += tar.stat().st_size

    manifest = [
        {
            "Config": f"{image_id.split(':', 1)[1]}.json",
            "RepoTags": [reference],
            "Layers": [_layer_member(diff_id) for diff_id in all_diff_ids],
        }
    ]
    files: list[tuple[str, Path | bytes]] = [
        ("manifest.json", json.dumps(manifest).encode()),
        (f"{image_id.split(':', 1)[1]}.json", config_bytes),
        *to_send,
    ]
    try:
        ensure_engine().images.load(_stream_archive(files))
    except docker.errors.DockerException as exc:  # APIError, ImageLoadError, ...
        raise PlatformError(
            f"the Docker engine refused the exported image {reference}: {getattr(exc, 'explanation', None) or exc}",
            "check `docker info` and the engine's log; rerun the build",
            spec.ExitCode.EXPORT_ERROR,
        ) from None
    loaded = ensure_engine().images.get(reference)
    if loaded.id != image_id:
        raise PlatformError(
            f"exported image {reference} has id {loaded.id}, expected {image_id}",
            "the engine rewrote the image config; this engine may not support `docker load` of this archive",
            spec.ExitCode.EXPORT_ERROR,
        )


def _layer_from_image(reference: str | None, layer: NewLayer, scratch: Path) -> Path:
    """Pull one layer's tar out of an image in the engine (`docker save`; slow, so a last resort)."""
    if reference is None:
        raise PlatformError(
            f"layer {layer.diff_id} ({layer.created_by}) must be sent to the engine but there is no tar for it",
            "the buildpack reused a layer that no previous image holds; rebuild with a cleared cache",
            spec.ExitCode.EXPORT_ERROR,
        )
    scratch.mkdir()
    saved = scratch / "image.tar"
    with saved.open("wb") as handle:
        for chunk in ensure_engine().images.get(reference).save(named=False):
            handle.write(chunk)
    with tarfile.open(saved) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(archive.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        members = dict(zip(config["rootfs"]["diff_ids"], manifest[0]["Layers"], strict=True))
        if layer.diff_id not in members:
            raise PlatformError(f"{reference} has no layer {layer.diff_id} to reuse", "", spec.ExitCode.EXPORT_ERROR)
        target = scratch / "layer.tar"
        with archive.extractfile(members[layer.diff_id]) as source, target.open("wb") as out:  # type: ignore[union-attr]
            shutil.copyfileobj(source, out, _CHUNK)
    saved.unlink()
    return target


def with_tag(reference: str) -> str:
    """`name` -> `name:latest`, as `docker build -t` does; `docker load` refuses untagged names."""
    last = reference.rsplit("/", 1)[-1]
    return reference if ":" in last or "@" in last else f"{reference}:latest"


def _layer_member(diff_id: str) -> str:
    return f"{diff_id.split(':', 1)[1]}/layer.tar"


def _stream_archive(files: list[tuple[str, Path | bytes]]) -> Iterator[bytes]:
    """Yield a tar of `files` without building it on disk: headers, then content in chunks."""
    seen_dirs: set[str] = set()
    for name, source in files:
        parent = name.rsplit("/", 1)[0] if "/" in name else ""
        if parent and parent not in seen_dirs:
            seen_dirs.add(parent)
            directory = tarfile.TarInfo(parent)
            directory.type = tarfile.DIRTYPE
            directory.mode = 0o755
            directory.mtime = NORMALIZED_MTIME
            yield directory.tobuf(format=tarfile.PAX_FORMAT)
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.mtime = NORMALIZED_MTIME
        if isinstance(source, bytes):
            info.size = len(source)
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            yield source
        else:
            info.size = source.stat().st_size
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            with source.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk
        padding = (-info.size) % tarfile.BLOCKSIZE
        if padding:
            yield b"\0" * padding
    yield b"\0" * (tarfile.BLOCKSIZE * 2)
