"""test_format.py: every C file of the tree is in the one style of .clang-format (`make format` applies it)."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_c_file_follows_clang_format():
    files = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(files) > 50
    r = subprocess.run(["clang-format", "--dry-run", "--Werror"] + files, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, "run `make format`:\n" + r.stderr[-3000:]
