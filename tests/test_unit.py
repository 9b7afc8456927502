"""test_unit.py: runs every C unit-test binary (built with ASan and UBSan) as one pytest case each."""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = sorted(glob.glob(os.path.join(ROOT, "build", "test", "unit", "test_*")))
BINARIES = [b for b in BINARIES if os.access(b, os.X_OK) and not b.endswith(".d")]
SOURCES = sorted(glob.glob(os.path.join(ROOT, "tests", "unit", "test_*.c")))


def test_every_unit_source_was_built():
    built = {os.path.basename(b) for b in BINARIES}
    wanted = {os.path.basename(s)[:-2] for s in SOURCES}
    assert wanted <= built, "not built: %s (run make unit)" % sorted(wanted - built)


@pytest.mark.parametrize("binary", BINARIES, ids=[os.path.basename(b) for b in BINARIES])
def test_unit_binary(binary):
    r = subprocess.run([binary], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert " passed, 0 failed" in r.stdout
