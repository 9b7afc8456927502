"""test_lib.py: `make lib` gives an archive a firmware links on its own: the simulator linked from it serves an upload."""
import hashlib
import os
import subprocess

from conftest import ROOT, Device


def test_the_simulator_linked_from_libpostern_serves_an_upload(tmp_path):
    subprocess.run(["make", "--no-print-directory", "-s", "-j2", "-C", ROOT, "lib", "build/host/postern-lib"],
                   check=True, capture_output=True)
    for header in ("postern.h", "storage.h", "platform.h", "postern_opts.h"):
        assert os.path.isfile(os.path.join(ROOT, "build", "host", "include", header)), header
    policy = tmp_path / "policy.lua"
    policy.write_text('function on_request(req) return 100 end\n')
    dev = Device(str(tmp_path / "storage"), ["--policy", str(policy)],
                 binary=os.path.join(ROOT, "build", "host", "postern-lib"))
    try:
        body = tmp_path / "fw.bin"
        data = os.urandom(300 * 1024)
        body.write_bytes(data)
        r = subprocess.run(["curl", "-sS", "-v", "-T", str(body), "http://127.0.0.1:%d/files/fw.bin" % dev.http],
                           capture_output=True, text=True, timeout=60)
        assert "< HTTP/1.1 100 Continue" in r.stderr and "< HTTP/1.1 201 Created" in r.stderr, r.stderr
        with open(os.path.join(dev.storage, "fw.bin"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        dev.stop()
