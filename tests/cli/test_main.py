"""The `kareljax` entry point: `--help` lists every command with the whole first paragraph of its
docstring; a Ctrl-C ends a command with status 130 and a line, not a traceback."""
import argparse
import importlib

from kareljax import cli


def test_each_command_summary_is_a_whole_sentence():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {a.dest: a.help for a in commands._choices_actions}
    assert sorted(summaries) == sorted(cli.COMMANDS)
    for name, summary in summaries.items():
        doc = importlib.import_module(f"kareljax.commands.{name}").__doc__
        assert summary == " ".join(doc.strip().split("\n\n")[0].split())
        assert summary.endswith("."), (name, summary)   # not cut at the first line break
    assert summaries["reproduce"].endswith("(data, training, evaluation, collection, probe "
                                           "scan, report).")


def test_ctrl_c_ends_a_command_with_130_and_a_line(monkeypatch, capsys):
    from kareljax.commands import report

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "run", interrupted)
    assert cli.main(["report", "--workdir", "anywhere"]) == 130
    assert capsys.readouterr().err.strip() == (
        "kareljax report: interrupted; what was finished is kept, and the same command "
        "continues from there")
