"""Pure parts of the exporter: image names docker load accepts, and the engine's chain IDs."""

from __future__ import annotations

import hashlib

import pytest

from conformance.platform.oci import chain_ids, with_tag


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("my-app", "my-app:latest"),
        ("my-app:1", "my-app:1"),
        ("registry:5000/team/app", "registry:5000/team/app:latest"),
        ("registry:5000/team/app:2", "registry:5000/team/app:2"),
        ("app@sha256:" + "0" * 64, "app@sha256:" + "0" * 64),
    ],
)
def test_with_tag_adds_latest_only_when_untagged(given: str, expected: str) -> None:
    assert with_tag(given) == expected


def test_chain_ids_hash_each_layer_with_everything_below_it() -> None:
    a, b, c = (f"sha256:{ch * 64}" for ch in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_ids([a, c])[1] != chain_ids([b, c])[1], "the same layer on a different base is a different chain"
