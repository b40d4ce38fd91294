"""`kareljax --help` lists every command with the whole first paragraph of its docstring."""
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
