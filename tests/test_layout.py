"""The tests mirror the package layout (tests/<package>/test_<module>.py) and pytest can collect
them all: in its default import mode two test files with one basename collide unless their
folders are packages, which a folder named like a standard module (tests/io) must not be."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "audiosym"


def test_test_file_basenames_do_not_collide():
    where = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            where[path.name].append(str(path.relative_to(TESTS)))
    assert not {name: paths for name, paths in where.items() if len(paths) > 1}


def test_each_test_folder_is_named_after_a_package():
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    known = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} | {"train", "export"}
    assert folders <= known, sorted(folders - known)
