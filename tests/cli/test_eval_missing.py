"""`audiosym eval` on something that does not exist (issue #16 item 13): says that neither a run
directory nor a preset of that name exists, where it looked, and how to get one."""

from pathlib import Path

import pytest

from audiosym.cli import main
from audiosym.cli.eval import open_model
from audiosym.errors import ParameterError
from audiosym.preset.format import shipped_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("method,model", [("sps", "runs/nope"), ("v3", "nope")])
def test_eval_on_a_missing_run_or_preset_says_where_it_looked(method, model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIOSYM_PRESETS", str(tmp_path / "my presets"))
    assert main(["eval", method, model, "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"'{model}' is neither a run directory ({tmp_path / model} does not exist) nor a preset" in err, err
    assert str(tmp_path / "my presets") in err and (shipped_dir() is None or str(shipped_dir()) in err)
    assert f"audiosym train {method} --config tiny --out {model}" in err and "audiosym presets list" in err
    assert "was not found" not in err  # the old message, which spoke only of presets


@pytest.mark.skipif(not (REPO / "presets" / "v3-default.asym").exists(), reason="v3-default is not shipped")
def test_eval_still_opens_a_preset_by_name_and_checks_its_family():
    assert open_model("v3-default", kind="v3").kind == "v3"
    with pytest.raises(ParameterError, match="holds a 'v3' model, but 'sps' was asked for"):
        open_model("v3-default", kind="sps")
