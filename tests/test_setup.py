"""The Makefile's interpreter discovery, run as a new developer's machine would run it."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ["make", "sh", "bash", "ls", "sort", "find", "dirname", "env", "test", "echo"]


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH directory holding only basic tools: no python3.10, no pyenv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return bin_dir


def fake_python(path: Path, exit_code: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)
    return path


def run(args: list[str], bin_dir: Path, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "HOME": str(home), "PYENV_ROOT": str(home / "pyenv")}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_setup_without_python_310_says_how_to_get_one_and_exits_2(bare_path, tmp_path):
    result = run(["make", "setup", f"VENV={tmp_path / 'venv'}"], bare_path, tmp_path)
    assert result.returncode == 2
    assert "No Python 3.10 found" in result.stderr
    assert "pyenv install 3.10" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_a_refusing_python310_shim_is_skipped_for_pyenvs_interpreter(bare_path, tmp_path):
    fake_python(bare_path / "python3.10", exit_code=127)  # like a pyenv shim for another version
    pyenv_python = fake_python(tmp_path / "pyenv/versions/3.10.13/bin/python", exit_code=0)
    result = run(["scripts/find-python310"], bare_path, tmp_path)
    assert result.stdout.strip() == str(pyenv_python)


def test_python310_on_path_wins_when_it_runs(bare_path, tmp_path):
    on_path = fake_python(bare_path / "python3.10", exit_code=0)
    fake_python(tmp_path / "pyenv/versions/3.10.13/bin/python", exit_code=0)
    result = run(["scripts/find-python310"], bare_path, tmp_path)
    assert result.stdout.strip() == str(on_path)


def test_the_real_machine_has_a_python_310():
    found = subprocess.run(
        ["scripts/find-python310"], cwd=ROOT, capture_output=True, text=True, env=os.environ
    ).stdout.strip()
    assert found
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    assert version.startswith("Python 3.10.")
