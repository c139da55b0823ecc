"""Blame: an env value exec cannot pass fails the build naming the buildpack and the file that wrote it.

Was: buildpack A's value (a NUL byte, 200 kB) reached buildpack B's `env -i ...` argv and B failed
with `exec /usr/bin/env: invalid argument`, naming neither A nor the file.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

LAYER = 'mkdir -p "$1/l/env" "$1/l/env.build"\nprintf \'[types]\\nbuild = true\\n\' >"$1/l.toml"\n'


def _build_pair(attack, writes: str):
    writer = attack.buildpack("a", LAYER + writes)
    victim = attack.buildpack("b", "echo b-ran")
    return attack.build([writer, victim])


def test_a_nul_byte_in_an_env_value_names_the_buildpack_and_file(attack) -> None:
    outcome = _build_pair(attack, "printf 'a\\000b' >\"$1/l/env/BAD\"")

    assert outcome.error is not None and "b-ran" not in outcome.output
    assert "invalid argument" not in str(outcome.error)
    attack.check("hostile/a", "/layers/hostile_a/l/env/BAD", "NUL")


def test_a_200_kb_env_value_names_the_buildpack_and_file(attack) -> None:
    outcome = _build_pair(attack, "head -c 200000 /dev/zero | tr '\\000' x >\"$1/l/env/HUGE.override\"")

    assert outcome.error is not None and "b-ran" not in outcome.output
    attack.check("hostile/a", "/layers/hostile_a/l/env/HUGE.override", "HUGE")


def test_a_value_grown_past_the_limit_by_prepends_names_the_file_that_grew_it(attack) -> None:
    """Each file alone is fine (100 kB); together they exceed what exec accepts: the second is named."""
    outcome = _build_pair(
        attack,
        "head -c 100000 /dev/zero | tr '\\000' x >\"$1/l/env/GROW.prepend\"\n"
        "head -c 100000 /dev/zero | tr '\\000' y >\"$1/l/env.build/GROW.prepend\"",
    )

    assert outcome.error is not None and "b-ran" not in outcome.output
    attack.check("hostile/a", "/layers/hostile_a/l/env.build/GROW.prepend")


def test_a_large_but_valid_value_still_reaches_the_next_buildpack(attack) -> None:
    """The limit is the kernel's, not lower: 100 kB passes."""
    writer = attack.buildpack("a", LAYER + "head -c 100000 /dev/zero | tr '\\000' x >\"$1/l/env/OK\"")
    reader = attack.buildpack("b", 'echo "b-ran ${#OK}"')
    outcome = attack.build([writer, reader])

    assert outcome.error is None, outcome.error
    assert "b-ran 100000" in outcome.output
    attack.check()
