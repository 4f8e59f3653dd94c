"""User presets (issue #16 item 6): `audiosym presets install` checks a file and copies it into
the user folder, names resolve shipped folder first, then the user folder, and `presets list`
says where each preset lives and which folders it searched. Real preset files throughout."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from audiosym.cli import main
from audiosym.preset.format import (
    preset_files,
    resolve_preset,
    search_folders,
    shipped_dir,
    user_dir,
)
from audiosym.preset.session import load_preset

REPO = Path(__file__).resolve().parents[2]
SPS, V3 = REPO / "presets" / "sps-default.asym", REPO / "presets" / "v3-default.asym"
pytestmark = pytest.mark.skipif(not (SPS.exists() and V3.exists()), reason="the shipped presets are missing")


@pytest.fixture
def user(tmp_path, monkeypatch):
    """An empty user preset folder (not created yet) and an exported preset file to install."""
    folder = tmp_path / "user presets"
    monkeypatch.setenv("AUDIOSYM_PRESETS", str(folder))
    exported = tmp_path / "runs" / "my-sps.asym"
    exported.parent.mkdir()
    shutil.copyfile(SPS, exported)
    return folder, exported


def test_user_dir_follows_audiosym_presets_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIOSYM_PRESETS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert user_dir() == tmp_path / "home" / ".local" / "share" / "audiosym" / "presets"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the XDG spec: relative values are ignored
    assert user_dir() == tmp_path / "home" / ".local" / "share" / "audiosym" / "presets"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_dir() == tmp_path / "xdg" / "audiosym" / "presets"
    monkeypatch.setenv("AUDIOSYM_PRESETS", str(tmp_path / "mine"))
    assert user_dir() == tmp_path / "mine"
    assert [w for w, _ in search_folders()] == ["shipped", "user"]


def test_install_then_use_by_name(user, capsys):
    folder, exported = user
    assert main(["presets", "install", str(exported)]) == 0
    err = capsys.readouterr().err
    installed = folder / "my-sps.asym"
    assert f"installed my-sps: {installed}" in err and "--preset my-sps" in err
    assert installed.read_bytes() == exported.read_bytes()
    assert os.listdir(folder) == ["my-sps.asym"]  # no temporary file left behind
    assert load_preset("my-sps", device="cpu").path == installed  # by name, from any folder
    assert main(["presets", "inspect", "my-sps", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(installed)


def test_install_under_another_name_as_json(user, capsys):
    folder, exported = user
    assert main(["presets", "install", str(exported), "--name", "violin-take2.asym", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {"name": "violin-take2", "path": str(folder / "violin-take2.asym"), "kind": "sps", "timbres": 29}


def test_installed_file_gets_the_permissions_of_a_new_file(user):
    folder, exported = user
    old = os.umask(0o027)
    try:
        assert main(["presets", "install", str(exported)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "my-sps.asym").stat().st_mode) == 0o640


def test_install_never_overwrites_silently(user, capsys):
    folder, exported = user
    assert main(["presets", "install", str(exported)]) == 0
    other = exported.parent / "other.asym"
    shutil.copyfile(V3, other)
    capsys.readouterr()
    assert main(["presets", "install", str(other), "--name", "my-sps"]) == 2
    err = capsys.readouterr().err
    assert "a user preset named 'my-sps' exists already" in err and "--overwrite" in err and "--name" in err
    assert (folder / "my-sps.asym").read_bytes() == SPS.read_bytes()  # untouched
    assert main(["presets", "install", str(other), "--name", "my-sps", "--overwrite"]) == 0
    assert (folder / "my-sps.asym").read_bytes() == V3.read_bytes()
    assert load_preset("my-sps", device="cpu").kind == "v3"


@pytest.mark.parametrize("damage,words", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a complete zip file"),
    (lambda p: p.write_bytes(b"RIFF....WAVEfmt "), "not a complete zip file"),
])
def test_install_checks_the_file_first(user, capsys, damage, words):
    folder, exported = user
    damage(exported)
    assert main(["presets", "install", str(exported)]) == 2
    assert words in capsys.readouterr().err
    assert not folder.exists()  # nothing was copied, not even the folder made


def test_install_refuses_a_missing_file_a_bad_name_and_a_shipped_name(user, capsys):
    folder, exported = user
    assert main(["presets", "install", str(exported.parent / "nope.asym")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert main(["presets", "install", str(exported), "--name", "../escape"]) == 2
    err = capsys.readouterr().err
    assert "--name ../escape cannot be a preset name" in err and "--name" in err
    assert main(["presets", "install", str(exported), "--name", "sps-default"]) == 2
    err = capsys.readouterr().err
    assert "name of a shipped preset" in err and "never load by name" in err and "--name" in err
    assert not folder.exists()


def test_names_resolve_shipped_folder_first_then_user_folder(user):
    folder, _ = user
    folder.mkdir()
    shutil.copyfile(V3, folder / "sps-default.asym")  # a user file of a shipped name (copied by hand)
    shutil.copyfile(V3, folder / "mine.asym")
    assert resolve_preset("sps-default") == shipped_dir() / "sps-default.asym"
    assert resolve_preset("mine") == folder / "mine.asym"
    assert resolve_preset(folder / "sps-default.asym") == folder / "sps-default.asym"  # a path is a path
    assert [(n, w) for n, _, w in preset_files()] == [
        ("sps-default", "shipped"), ("v3-default", "shipped"), ("mine", "user"), ("sps-default", "user")]


def test_list_says_where_presets_live_and_how_to_add_one(user, capsys):
    folder, exported = user
    assert main(["presets", "list"]) == 0
    out = capsys.readouterr().out
    assert f"1. shipped  {shipped_dir()}" in out and f"2. user     {folder}  (does not exist yet)" in out
    assert "audiosym presets install FILE.asym" in out
    assert main(["presets", "install", str(exported)]) == 0
    shutil.copyfile(V3, folder / "v3-default.asym")
    capsys.readouterr()
    assert main(["presets", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("my-sps") and line.rstrip().endswith("user") for line in lines), out
    assert f"hidden by the shipped preset of the same name; use it by path: {folder / 'v3-default.asym'}" in out
    assert main(["presets", "list", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [(s["where"], s["folder"], s["exists"]) for s in info["search_order"]] == [
        ("shipped", str(shipped_dir()), True), ("user", str(folder), True)]
    rows = {(r["name"], r["where"]): r for r in info["presets"]}
    assert rows[("my-sps", "user")]["path"] == str(folder / "my-sps.asym") and rows[("my-sps", "user")]["hidden_by"] is None
    assert rows[("v3-default", "user")]["hidden_by"] == "shipped"


def test_not_found_names_the_folders_and_how_to_add_one(user, capsys):
    assert main(["presets", "inspect", "my-sps"]) == 2
    err = capsys.readouterr().err
    assert str(user[0]) in err and "audiosym presets install FILE.asym" in err


def test_help_says_the_resolution_order(capsys):
    with pytest.raises(SystemExit):
        main(["presets", "--help"])
    out = capsys.readouterr().out
    assert "looked up in this order" in out and "1. the shipped presets/ folder" in out and "2. the user folder" in out
    assert "XDG_DATA_HOME" in out and "audiosym presets install" in out
