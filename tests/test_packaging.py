"""A wheel of audiosym carries the shipped presets, and an installed wheel finds them."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_and_finds_the_shipped_presets(tmp_path):
    # build from a copy: setuptools writes build/ and *.egg-info beside the sources
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("audiosym", "train", "export", "presets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(src)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("audiosym-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (ROOT / "presets").glob("*.asym"))
    assert shipped, "the checkout ships presets"
    in_wheel = sorted(Path(n).name for n in names if "/share/audiosym/presets/" in n and n.endswith(".asym"))
    assert in_wheel == shipped
    # installed into a fresh environment, run from elsewhere: the presets are found where the
    # wheel put them, not in this checkout. The dependencies come from this interpreter's
    # site-packages through a .pth path entry (not scanned for .pth files itself, so this
    # environment's editable install of audiosym stays out of it)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    venv_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip()
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(venv_site, "audiosym_test_deps.pth").write_text("\n".join(parents) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    out = subprocess.run(
        [str(py), "-c", "import audiosym.preset.format as p; print(p.__file__); print(p.shipped_dir()); "
                        "print(sorted(n for n, _, w in p.preset_files() if w == 'shipped'))"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.splitlines()
    assert out[0].startswith(str(venv)), out
    assert out[1] == str(venv / "share" / "audiosym" / "presets")
    assert out[2] == str([n[: -len(".asym")] for n in shipped])
