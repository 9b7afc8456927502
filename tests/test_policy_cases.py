"""test_policy_cases.py: every shipped policy passes the cases beside it (build/host/postern-policy), a default
policy whose token check is removed fails them, and luacheck finds nothing in scripts/."""
import glob
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "build", "host", "postern-policy")
SCRIPTS = sorted([os.path.join(ROOT, "scripts", "policy.lua")] +
                 glob.glob(os.path.join(ROOT, "scripts", "examples", "*.lua")))


def run_tool(*args):
    return subprocess.run([TOOL] + list(args), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_every_shipped_policy_has_its_cases():
    missing = [s for s in SCRIPTS if not os.path.exists(s[:-4] + ".cases")]
    assert not missing, "no cases file beside %s" % missing


@pytest.mark.parametrize("script", SCRIPTS, ids=[os.path.relpath(s, ROOT) for s in SCRIPTS])
def test_the_policy_passes_its_cases(script):
    r = run_tool(script, script[:-4] + ".cases")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    cases = [l for l in lines if re.match(r"^(PASS|FAIL) +\d+ ", l)]
    assert cases and all(l.startswith("PASS") and " instructions, " in l for l in cases), r.stdout
    assert lines[-1].startswith("PASS ") and " 0 failed" in lines[-1], r.stdout


def test_the_default_policy_without_its_token_check_fails_its_cases(tmp_path):
    source = open(os.path.join(ROOT, "scripts", "policy.lua")).read()
    check = re.compile(r"\n  local presented = auth\.bearer.*?\n  if not auth\.equal\(presented, token\) then\n.*?\n  end\n",
                       re.S)
    mutated, n = check.subn("\n", source)
    assert n == 1, "the token check of scripts/policy.lua is not where this test expects it"
    path = tmp_path / "policy.lua"
    path.write_text(mutated)
    r = run_tool(str(path), os.path.join(ROOT, "scripts", "policy.cases"))
    assert r.returncode == 1, r.stdout
    assert "FAIL" in r.stdout.splitlines()[-1]
    assert any(l.startswith("FAIL") and "the listing needs the token" in l for l in r.stdout.splitlines()), r.stdout


def test_a_policy_that_does_not_load_or_fails_its_self_test_fails(tmp_path):
    bad = tmp_path / "bad.lua"
    bad.write_text("function on_request(req)\n  return true\nend\nlocal x = = 1\n")
    r = run_tool(str(bad))
    assert r.returncode == 1 and "bad.lua:4:" in r.stdout, r.stdout
    st = tmp_path / "st.lua"
    st.write_text("function on_request(req) return true end\nfunction self_test() return false, 'nope' end\n")
    r = run_tool(str(st))
    assert r.returncode == 1 and "self_test failed: nope" in r.stdout, r.stdout


def test_help_documents_the_cases_format():
    r = run_tool("--help")
    assert r.returncode == 0 and "answer" in r.stdout and "storage" in r.stdout and "settings" in r.stdout


def luacheck(*paths):
    return subprocess.run(["luacheck", "--config", os.path.join(ROOT, "scripts", ".luacheckrc"), "--formatter", "plain",
                           "--codes"] + list(paths), cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_luacheck_finds_nothing_in_scripts():
    cases = sorted(glob.glob(os.path.join(ROOT, "scripts", "**", "*.cases"), recursive=True))
    r = luacheck("scripts", *cases)
    assert r.returncode == 0, r.stdout + r.stderr


def test_luacheck_knows_what_the_sandbox_lacks(tmp_path):
    bad = tmp_path / "bad.lua"
    bad.write_text("function on_request(req)\n  local t = os.time()\n  return string.dump(on_request) and t\nend\n")
    r = luacheck(str(bad))
    assert r.returncode != 0 and "'os'" in r.stdout and "field 'dump' of global 'string'" in r.stdout, r.stdout
