"""One error path: user-facing errors share `KareljaxError`, and `cli.main` turns each into one
line on stderr and exit status 2."""
from __future__ import annotations

import pytest

from kareljax import cli
from kareljax.config_files import ConfigError
from kareljax.data.export import ExportMismatchError
from kareljax.data.pipeline import DatasetReadError, MissingDatasetError
from kareljax.errors import KareljaxError
from kareljax.karel.records import RecordFileError
from kareljax.plan.targets import MissingCompilerError
from kareljax.probe.report_data import ReportInputError
from kareljax.probe.store import CollectionReadError
from kareljax.train.checkpoints import CheckpointReadError
from kareljax.train.load import RunNotFoundError


@pytest.mark.parametrize("error", [ConfigError, DatasetReadError, MissingDatasetError,
                                   CollectionReadError, CheckpointReadError, RunNotFoundError,
                                   ReportInputError, RecordFileError, ExportMismatchError,
                                   MissingCompilerError])
def test_user_facing_errors_share_one_base(error):
    assert issubclass(error, KareljaxError)


def test_a_hint_follows_the_message():
    assert str(KareljaxError("x is damaged", hint="run y")) == "x is damaged; run y"
    assert str(ConfigError("train.lr: must be > 0")) == "train.lr: must be > 0"


def test_the_command_line_reports_one_line_and_exits_2(monkeypatch, capsys):
    from kareljax.commands import report

    def fails(args):
        raise CollectionReadError("step 5's index does not read back", hint="collect it again")

    monkeypatch.setattr(report, "run", fails)
    assert cli.main(["report", "--workdir", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err == "kareljax report: step 5's index does not read back; collect it again\n"


def test_other_exceptions_keep_their_traceback(monkeypatch):
    from kareljax.commands import report

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(report, "run", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["report", "--workdir", "nowhere"])
