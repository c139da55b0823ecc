"""The probe buildpack on the host, with stand-in `pip` programs: it cannot be broken by the
variables it records, it records the real environment, and it notices when an earlier layer changed.

No Docker: the probe is a plain script run with the build image's interpreter path, so the host's
/usr/bin/python3 (the same path) stands in for it, exactly through the probe's own shebang.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conformance.fixtures import PROBE_DIR

PROBE = PROBE_DIR / "bin" / "build"
pytestmark = pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3 (the shebang)")

# A `pip` for the probe to run: prints what real pip would for the commands the probe uses.
FAKE_PIP = """#!/bin/sh
case "$1" in
--version) echo "pip 25.3 from /layers/x/installer/lib/pip (python 3.13)" ;;
list) echo '[{"name": "six", "version": "1.17.0"}]' ;;
inspect) echo '{"installed": [{"metadata": {"name": "six"}, "metadata_location": "/venv/six.dist-info"}]}' ;;
install)
    [ "$PYTHONDONTWRITEBYTECODE" = 1 ] && [ "$PIP_NO_CACHE_DIR" = 1 ] || exit 3  # the probe's NO_WRITES
    while [ "$1" != "--target" ]; do shift; done
    mkdir -p "$2" && touch "$2/six.py"
    %s
    ;;
esac
"""


def _layers(tmp_path: Path) -> tuple[Path, Path]:
    layers = tmp_path / "layers"
    earlier = layers / "acme_python"
    (earlier / "pkgs" / "lib").mkdir(parents=True)
    (earlier / "pkgs.toml").write_text("[types]\nbuild = true\nlaunch = true\n")
    (earlier / "pkgs" / "lib" / "six.py").write_text("# six\n")
    own = layers / "bpconform_probe"
    own.mkdir()
    return earlier, own


def _run_probe(tmp_path: Path, pip_extra: str = "") -> dict:
    earlier, own = _layers(tmp_path)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "pip").write_text(FAKE_PIP % pip_extra.replace("EARLIER", str(earlier)))
    (fake_bin / "pip").chmod(0o755)
    env = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "PYTHONHOME": "/bogus/home",  # kills a non-isolated interpreter at start-up
        "PYTHONPATH": "/bogus/pythonpath",
        "VIRTUAL_ENV": "/bogus/venv",
        "BPCONFORM_PROBE_IMPORT": "six",
    }
    result = subprocess.run([str(PROBE), str(own), "/platform", "/plan"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "probe: recorded" in result.stdout
    assert (own / "record.toml").read_text() == "[types]\nlaunch = true\n"
    assert sorted(p.name for p in own.iterdir()) == ["record", "record.toml"], "the probe left scratch files behind"
    return json.loads((own / "record" / "record.json").read_text())


def test_probe_runs_isolated_and_records_the_real_environment(tmp_path: Path) -> None:
    record = _run_probe(tmp_path)
    assert record["format"] == 2 and record["complete"] is True and record["isolated"] is True
    assert record["env"]["PYTHONHOME"] == "/bogus/home" and record["env"]["VIRTUAL_ENV"] == "/bogus/venv"
    assert record["which"]["pip"] == str(tmp_path / "bin" / "pip")
    assert record["pip_inspect"]["locations"] == {"six": "/venv/six.dist-info"}
    assert record["pip_target_install"]["exit"] == 0 and record["pip_target_install"]["installed"] == ["six.py"]
    assert record["layer_tomls"] == {"acme_python": {"pkgs": "[types]\nbuild = true\nlaunch = true\n"}}
    assert record["earlier_layers_untouched"] is True and record["earlier_layers_changed"] == []


def test_probe_reports_a_pip_that_changes_an_earlier_layer(tmp_path: Path) -> None:
    """What `pip install --force-reinstall` into the app's venv did: the record must say so."""
    record = _run_probe(tmp_path, pip_extra='chmod 700 "EARLIER/pkgs/lib"; echo x >> "EARLIER/pkgs/lib/six.py"')
    assert record["earlier_layers_untouched"] is False
    changed = "\n".join(record["earlier_layers_changed"])
    assert "acme_python/pkgs/lib" in changed and "six.py" in changed


def test_probe_record_checks_raise_harness_errors() -> None:
    """A missing, partial or unisolated record is the harness's error, never a pass or a skip."""
    from conformance.suite.requirements import HarnessError, MissingInput, probe_record

    class Image:
        reference = "img"

        def __init__(self, text: str | None) -> None:
            self.text = text

        def read_file(self, path: str) -> str | None:
            return self.text

    class FakeBuild:
        app = "minimal"

        def __init__(self, text: str | None) -> None:
            self.image = Image(text)

    good = {"format": 2, "complete": True, "isolated": True, "earlier_layers_untouched": True}
    assert probe_record(FakeBuild(json.dumps(good)))["complete"] is True
    for text, fragment in [
        (None, "is missing"),
        ("{not json", "not JSON"),
        (json.dumps({**good, "complete": False}), "incomplete"),
        (json.dumps({**good, "format": 1}), "incomplete or of another format"),
        (json.dumps({**good, "isolated": False}), "did not run isolated"),
        (json.dumps({**good, "earlier_layers_untouched": False}), "changed the layers"),
    ]:
        with pytest.raises((HarnessError, MissingInput), match=fragment) as caught:
            probe_record(FakeBuild(text))
        assert isinstance(caught.value, MissingInput if text is None else HarnessError)


def test_probe_shebang_isolates_its_own_interpreter() -> None:
    first = PROBE.read_text().splitlines()[0]
    assert first == "#!/usr/bin/python3 -IS", first
    assert os.access(PROBE, os.X_OK)
