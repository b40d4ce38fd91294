"""`kareljax reproduce` runs every stage, and a second run continues instead of starting over,
also from a run stopped in the middle of its collection."""
import json

from kareljax import cli
from kareljax.probe import store
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

    # Stopped while collecting step 10's last split (train), before the scan and the report.
    directory = store.step_dir(run, 10)
    index = store.read_index(directory)
    del index["splits"]["train"]
    with open(f"{directory}/{store.INDEX}", "w") as f:
        json.dump(index, f)
    (run / "results.jsonl").unlink()
    (run / "report" / "report.md").unlink()
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "already trained" in captured.err
    assert "collected steps [0, 10] (1 new)" in captured.out
    assert {json.loads(line)["step"] for line in open(run / "results.jsonl")} == {0, 10}
    assert "Table 1" in (run / "report" / "report.md").read_text()

    # Asked for another model in the same run directory: train refuses, reproduce stops there.
    assert cli.main([*args, "--config.model.d_model=32"]) == 2
    err = capsys.readouterr().err
    assert "model.d_model: 64 there, 32 now" in err
    assert "[reproduce] train stopped (exit 2; the reason is above)" in err
    assert "[reproduce] eval" not in err
