"""scripts/setup.sh and scripts/test.sh, the README's two commands: the parts that run without
installing anything (the installs themselves are what CI's `.ci/run` does on a fresh machine)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_scripts_are_valid_bash():
    for script in ("scripts/setup.sh", "scripts/test.sh", ".ci/run"):
        assert _run("-n", script).returncode == 0, script


def test_setup_refuses_an_unknown_mode_before_installing_anything():
    res = _run("scripts/setup.sh", "--gpu-please")
    assert res.returncode == 2 and "usage: scripts/setup.sh [--runtime]" in res.stderr
    assert "apt-get" not in res.stdout


def test_test_script_without_its_environment_says_what_to_run(tmp_path):
    res = _run("scripts/test.sh", env={"AUDIOSYM_VENV": str(tmp_path / "no-venv")})
    assert res.returncode == 2
    assert "run bash scripts/setup.sh first" in res.stderr


def test_readme_commands_use_the_environment_setup_makes():
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/setup.sh --runtime && .venv/bin/audiosym demo" in readme
    assert "bash scripts/setup.sh && bash scripts/test.sh" in readme
    assert 'VENV=${AUDIOSYM_VENV:-.venv}' in (REPO / "scripts/setup.sh").read_text()
