"""`kareljax reproduce` runs every stage, and a second run continues instead of starting over."""
import json

from kareljax import cli
from tests.micro import micro_overrides


def test_reproduce_then_continue(tmp_path, capsys):
    args = ["reproduce", "--config", "tiny", "--workdir", str(tmp_path / "run"),
            *micro_overrides(tmp_path / "data")]
    status = cli.main(args)
    assert status == 0
    run = tmp_path / "run"
    report = (run / "report" / "report.md").read_text()
    assert "Table 1" in report or "table 1" in report.lower()
    rows = [json.loads(line) for line in open(run / "results.jsonl")]
    assert {r["step"] for r in rows} == {0, 10}
    mtime = (run / "results.jsonl").stat().st_mtime
    err = capsys.readouterr().err
    # progress bars (tqdm, on stderr) for the long stages: training, collection, probes
    assert "10/10" in err and ("step/s" in err or "s/step" in err)   # the training bar
    assert "checkpoints: 100%" in err and "probes: 100%" in err
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "already trained" in err and "kept" in err
    assert (run / "results.jsonl").stat().st_mtime == mtime
