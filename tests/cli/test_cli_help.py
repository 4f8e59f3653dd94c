"""Help that teaches (#16 item 11): every command's ``--help`` ends with examples that parse,
every option says what it does, and the words it uses are explained in docs/musicians.md."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from audiosym.cli import build_parser, main

MUSICIANS = Path(__file__).resolve().parents[2] / "docs" / "musicians.md"

# Words a musician meets in help and output; each has a glossary entry in docs/musicians.md.
WORDS = (
    "latent", "SPS", "V3", "z_pitch", "R²", "Hungarian", "k-NN", "leakage", "zero-shot", "pyin", "MRSTFT",
    "RTPGHI", "codebook atom", "xrun", "timbre", "preset", "transfer mode", "synth mode", "note envelope",
    "match correction", "dynamics", "latency", "JACK", "PipeWire", "PulseAudio", "soundfont", "MIDI",
)


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(path, parser)`` for the top level and every subcommand, sub-actions included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


PARSERS = dict(_parsers(build_parser()))
COMMANDS = [p for p in PARSERS if p]


def _ids(path: tuple[str, ...]) -> str:
    return " ".join(path) or "audiosym"


def _help(path: tuple[str, ...], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _examples(text: str) -> list[str]:
    """The lines of the last ``examples:`` block, which must close the text."""
    head, sep, block = text.rstrip().rpartition("\nexamples:\n")
    assert sep, f"no 'examples:' block at the end of:\n{text[-600:]}"
    lines = block.splitlines()
    assert lines and all(line.startswith("  ") and line.strip() for line in lines), block
    too_long = [line for line in lines if len(line) > 100]  # fits a 100-column terminal unwrapped
    assert not too_long, too_long
    return [line.strip() for line in lines]


def _command(line: str) -> list[str]:
    """An example line's arguments after ``audiosym``: shell comments, pipes and redirections
    (``... --json > eval.json``) end it; what comes before ``audiosym`` (``pw-jack``,
    ``torchrun ... -m``, ``.venv/bin/``) is the shell's."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    tokens = list(lex)
    for i, t in enumerate(tokens):
        if t and set(t) <= set("();<>|&"):
            tokens = tokens[:i]
            break
    starts = [i for i, t in enumerate(tokens) if t == "audiosym" or t.endswith("/audiosym")]
    assert starts, f"example does not run audiosym: {line!r}"
    return tokens[starts[0] + 1:]


def test_every_subcommand_of_the_issue_is_covered():
    names = {p[0] for p in COMMANDS}
    assert {"demo", "train", "eval", "export", "presets", "resynth", "live", "bench"} <= names
    assert {("presets", "list"), ("presets", "inspect")} <= set(COMMANDS)


@pytest.mark.parametrize("path", list(PARSERS), ids=_ids)
def test_help_exits_0_and_ends_with_examples(path, capsys):
    examples = _examples(_help(path, capsys))
    assert len(examples) >= (1 if len(path) > 1 else 2)


@pytest.mark.parametrize("path", list(PARSERS), ids=_ids)
def test_every_option_has_a_help_string(path):
    missing = []
    for action in PARSERS[path]._actions:
        if isinstance(action, argparse._SubParsersAction):
            actions = action._choices_actions  # one per sub-action, help= of add_parser
        else:
            actions = [action]
        for a in actions:
            if not a.help or a.help == argparse.SUPPRESS or not a.help.strip():
                missing.append("/".join(a.option_strings) or a.dest or a.metavar)
    assert not missing, f"`audiosym {_ids(path)}`: no help string for {missing}"


@pytest.mark.parametrize("path", list(PARSERS), ids=_ids)
def test_each_example_parses_with_the_real_parser(path, capsys):
    parser = build_parser()
    for line in _examples(_help(path, capsys)):
        argv = _command(line)
        assert tuple(argv[:len(path)]) == path, f"`audiosym {_ids(path)} --help` shows another command: {line!r}"
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"example does not parse: {line!r}\n{capsys.readouterr().err}")
        assert getattr(args, "func", None) is not None, line


def test_top_level_help_points_to_the_glossary(capsys):
    text = _help((), capsys)
    assert "docs/musicians.md" in text
    assert MUSICIANS.is_file()


def test_resynth_help_is_short():
    from audiosym.cli.resynth import HELP

    assert len(HELP.splitlines()) <= 30  # it was 57 lines of prose; the details are in docs/musicians.md
    assert "docs/musicians.md" in HELP


def _glossary() -> dict[str, str]:
    """``### word`` headings of docs/musicians.md's glossary -> their text."""
    text = MUSICIANS.read_text(encoding="utf-8")
    _, _, glossary = text.partition("\n## Glossary\n")
    assert glossary, "docs/musicians.md has no '## Glossary' section"
    glossary = glossary.split("\n## ")[0]
    entries = re.split(r"^### (.+)$", glossary, flags=re.M)[1:]
    return {entries[i].strip(): entries[i + 1].strip() for i in range(0, len(entries), 2)}


def test_glossary_explains_each_word():
    glossary = _glossary()
    headings = " / ".join(glossary).lower()
    missing = [w for w in WORDS if w.lower() not in headings]
    assert not missing, f"docs/musicians.md: no glossary entry for {missing}"
    empty = [h for h, body in glossary.items() if len(body.split()) < 8]
    assert not empty, f"docs/musicians.md: entries with (almost) no text: {empty}"


def test_first_hour_walk_through_commands_parse():
    """The walk-through's ``audiosym`` commands are real command lines."""
    text = MUSICIANS.read_text(encoding="utf-8")
    _, _, walk = text.partition("\n## Your first hour\n")
    assert walk, "docs/musicians.md has no '## Your first hour' section"
    walk = walk.split("\n## ")[0]
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", walk, flags=re.S)
    lines = [ln for b in blocks for ln in b.splitlines()
             if not ln.lstrip().startswith("#") and re.search(r"(^|[\s/])audiosym\s", ln)]
    assert len(lines) >= 5
    parser = build_parser()
    for line in lines:
        try:
            parser.parse_args(_command(line))
        except SystemExit:
            pytest.fail(f"docs/musicians.md: command does not parse: {line!r}")
