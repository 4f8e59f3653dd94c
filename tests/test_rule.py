"""DESIGN.md's rule: `import audiosym` (and its runtime modules) never import torch."""

import pkgutil
import subprocess
import sys

import audiosym


def _runtime_modules():
    return sorted(
        m.name for m in pkgutil.walk_packages(audiosym.__path__, "audiosym.") if not m.name.endswith("__main__")
    )


def test_import_audiosym_does_not_import_torch():
    mods = _runtime_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "assert not bad, bad[:5]\n"
        "print('ok', len(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_cli_help_without_torch():
    code = (
        "import sys\nfrom audiosym.cli import build_parser\n"
        "build_parser().format_help()\nassert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
