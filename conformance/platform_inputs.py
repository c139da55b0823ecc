"""How the harness's own stacks, runtimes and package access become the platform's plain inputs.

The embedded platform (conformance.platform) knows images, a build user, a target, `<platform>/env`,
mounts and whether the network is on; it knows nothing of how stacks or runtimes are made. This is
the one place that translates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.engine import Mount
from conformance.platform.archive import Owner
from conformance.platform.buildpack import RunTarget
from conformance.platform.creator import BuildRequest
from conformance.runtimes import CONTAINER_RUNTIMES_DIR

if TYPE_CHECKING:
    from conformance.access import PackageAccess
    from conformance.stacks import Stack


def stack_target(stack: Stack) -> RunTarget:
    return RunTarget("linux", stack.arch, stack.distro_name, stack.distro_version)


def stack_build_request(
    *,
    stack: Stack,
    access: PackageAccess | None = None,
    runtimes_dir: Path | None = None,
    user_env: dict[str, str] | None = None,
    **options: Any,
) -> BuildRequest:
    """A build on one of our stacks: the runtimes mounted where the reference buildpack looks for
    them, and the package access's mounts and `<platform>/env` variables under the user's own."""
    mounts = list(access.mounts()) if access is not None else []
    if runtimes_dir is not None:
        mounts.append(Mount(runtimes_dir, CONTAINER_RUNTIMES_DIR, read_only=True))
    platform_env = dict(access.platform_env()) if access is not None else {}
    platform_env.update(user_env or {})
    return BuildRequest(
        build_image=stack.build_image,
        run_image=stack.run_image,
        target=stack_target(stack),
        build_user=Owner(stack.build_uid, stack.build_gid),
        platform_env=platform_env,
        mounts=mounts,
        network=access is None or access.mode != "offline",
        **options,
    )
