"""test_lwip_check.py: a firmware's lwIP options that postern cannot work with fail the build, naming the option;
the integration options build."""
import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_conn(*defines, source="src/http_conn.c", make_args=()):
    flags = subprocess.run(["make", "--no-print-directory", "-s", "-C", ROOT, "cflags"] + list(make_args),
                           capture_output=True, text=True, check=True).stdout
    flags = [f for f in shlex.split(flags) if f not in ("-MMD", "-MP")]
    return subprocess.run(["gcc", "-fsyntax-only"] + flags + ["-D" + d for d in defines] + [source],
                          cwd=ROOT, capture_output=True, text=True)


def test_the_shipped_options_pass():
    r = compile_conn()
    assert r.returncode == 0, r.stderr


def test_the_rtos_options_pass():
    """NO_SYS=0 (tcpip_thread, the host's RTOS mode) passes the same checks."""
    r = compile_conn(make_args=["NO_SYS=0"])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("define, message", [
    ("TCP_SND_BUF=1072", "TCP_SND_BUF must be at least 1536 bytes"),  # lwIP's default: every request would end in 408
    ("PBUF_POOL_SIZE=6", "PBUF_POOL_SIZE must be at least POSTERN_MAX_CONNS * POSTERN_CONN_PBUFS_MAX + 2"),
    ("MEMP_NUM_TCP_PCB=4", "MEMP_NUM_TCP_PCB must be at least POSTERN_MAX_CONNS + 1"),
    ("MEM_SIZE=3072", "MEM_SIZE must"),
])
def test_a_wrong_lwip_option_fails_the_build_naming_it(define, message):
    r = compile_conn(define)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr[-2000:]


def test_tls_builds_on_the_firmwares_own_mbedtls_allocator():
    """POSTERN_TLS_OWN_HEAP=0: postern installs no allocator and reserves no TLS heap."""
    r = compile_conn("POSTERN_TLS_OWN_HEAP=0", source="port/tls.c")
    assert r.returncode == 0, r.stderr[-2000:]
