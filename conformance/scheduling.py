"""Under pytest-xdist, every check of one chain of builds runs in one worker; the rest spread as with `load`.

A chain is a sequence of builds that several checks share and that only makes sense in one process:
each step rebuilds the step before under the same image and cache (`suite/lockfile_history.py`,
one chain per package manager). Its memo is per process, so under xdist's default `--dist load`
a chain whose checks land in two workers is built in both: the suite's most expensive builds, twice.

How the checks of a chain are kept together:

- A check says which chain it uses with the marker `bpconform_chain(key)` (the suite sets it: see
  `suite/test_package_managers.py`). The key is the chain's name, e.g. the package manager.
- Each worker, after collection (and after `-k`/`-m` deselection), writes the map node id -> key of
  the items it collected to `chains/<worker id>.json` in the run's shared dir
  (`shared_builds.shared_dir`); it does so before it tells the controller its collection, so the
  files are there when the controller schedules. The controller collects nothing itself, which is
  why the map has to come from a worker; xdist's only channel for it is fixed to node ids.
- The controller's scheduler (`ChainScheduling`, from the `pytest_xdist_make_scheduler` hook in
  `conformance.plugin`) is xdist's `LoadScopeScheduling` whose scope of a node id is its chain, or
  the node id itself for a check in no chain: a chain is one work unit for one worker, every other
  check is a unit of its own and goes to whichever worker is free, as under `--dist load`. xdist
  orders the units by size, so the longest chains start first.

Why not `--dist loadgroup` with `xdist_group` marks: pytest-xdist 3.8 (`xdist/remote.py`,
`WorkerInteractor.pytest_collection_modifyitems`) appends the group to `item._nodeid`, but pytest 9
(`_pytest/nodes.py`, `Node.nodeid`) returns `str(self._id)` and never reads `_nodeid`, so the
controller sees plain node ids and `LoadGroupScheduling` makes every test its own group.

The plugin uses this scheduler only for suite runs (`--buildpack` given) under `--dist load`
(xdist's default with `-n`); another `--dist` is left to xdist, and without xdist nothing here runs.
A worker that cannot write its map only costs time: the controller then schedules the checks it has
no key for one by one, and a chain split over two workers is built by both (its checks still pass
or fail on their own builds).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

CHAIN_MARKER = "bpconform_chain"
MARKER_HELP = f"{CHAIN_MARKER}(key): the check uses the session's chain of builds `key` (under xdist: one worker)"
CHAINS_DIR = "chains"  # in the run's shared dir: one `<worker id>.json` per worker
SCOPE_PREFIX = "bpconform-chain:"  # a chain's scope; node ids never start with it (they start with a path)


def chain_key(item: pytest.Item) -> str | None:
    """The chain an item's `bpconform_chain(key)` marker names, or None; a marker without a plain
    key is a usage error (the suite's author wrote it, so say where)."""
    mark = item.get_closest_marker(CHAIN_MARKER)
    if mark is None:
        return None
    key = mark.args[0] if len(mark.args) == 1 and not mark.kwargs else None
    if not isinstance(key, str) or not key:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.{CHAIN_MARKER} takes exactly one argument, the chain's name"
            f" (a non-empty string); got args={mark.args!r} kwargs={mark.kwargs!r}"
        )
    return key


def chains_of(items: Iterable[pytest.Item]) -> dict[str, str]:
    """Node id -> chain key, for the items in a chain."""
    found = {}
    for item in items:
        key = chain_key(item)
        if key is not None:
            found[item.nodeid] = key
    return found


def map_path(shared: Path, worker: str) -> Path:
    return shared / CHAINS_DIR / f"{worker}.json"


def write_chain_map(shared: Path, worker: str, chains: Mapping[str, str]) -> None:
    """(worker) Leave the map for the controller; a failure to write it is a warning, not an error:
    the run is still right, only slower."""
    path = map_path(shared, worker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(dict(chains), indent=1, sort_keys=True))
        os.replace(temporary, path)  # the controller reads the whole map or none
    except OSError as exc:
        warnings.warn(
            f"bpconform: could not write the chain map {path} ({exc}); under xdist a chain's checks may"
            " run in two workers, each building the chain",
            stacklevel=1,
        )


def read_chain_maps(shared: Path, workers: Iterable[str]) -> dict[str, str]:
    """(controller) The union of the workers' maps; a missing or unreadable one adds nothing."""
    chains: dict[str, str] = {}
    for worker in workers:
        try:
            data = json.loads(map_path(shared, worker).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            chains.update({str(nodeid): str(key) for nodeid, key in data.items()})
    return chains


class ChainScheduling(LoadScopeScheduling):
    """`LoadScopeScheduling` with a chain as a scope and every other node id a scope of its own."""

    def __init__(self, config: pytest.Config, log: Producer | None = None, *, shared: Path) -> None:
        super().__init__(config, log)
        self.log = log.chainsched if log is not None else Producer("chainsched")
        self.shared = shared
        self.chains: dict[str, str] = {}

    def schedule(self) -> None:
        if self.collection is None:  # the first call: every worker has collected (and written its map)
            workers = [_worker_id(node) for node in self.registered_collections]
            self.chains = read_chain_maps(self.shared, workers)
            self.log(f"{len(self.chains)} checks in {len(set(self.chains.values()))} chains")
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        key = self.chains.get(nodeid)
        return nodeid if key is None else f"{SCOPE_PREFIX}{key}"


def _worker_id(node: WorkerController) -> str:
    return str(node.workerinput["workerid"])
