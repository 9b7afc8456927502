"""test_fuzz.py: replays every fuzz target's seed corpus, then fuzzes each for a short bounded time."""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = sorted(os.path.basename(p)[5:-2] for p in glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c")))


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_replays_corpus_and_runs_briefly(name, tmp_path):
    binary = os.path.join(ROOT, "build", "fuzz", "fuzz_" + name)
    corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", name)
    assert os.path.isdir(corpus) and os.listdir(corpus), "no seed corpus for " + name
    # -timeout: an input that runs 10 s hangs; libFuzzer reports it rather than the test timing out.
    r = subprocess.run([binary, "-runs=0", "-timeout=10", corpus], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([binary, "-max_total_time=10", "-timeout=10", "-artifact_prefix=%s/" % tmp_path,
                        str(tmp_path), corpus], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
