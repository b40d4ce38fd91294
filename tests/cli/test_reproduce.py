"""`kareljax reproduce` runs every stage, and a second run continues instead of starting over."""
import json

from kareljax import cli


def test_reproduce_then_continue(tmp_path, capsys):
    args = ["reproduce", "--config", "tiny", "--workdir", str(tmp_path / "run"),
            f"--config.data.data_dir={tmp_path / 'data'}", "--config.data.num_train=300",
            "--config.data.num_val=100", "--config.data.num_test=100", "--config.train.num_steps=10",
            "--config.train.warmup_steps=1", "--config.train.checkpoint_every=10",
            "--config.train.keep_latest_every=10", "--config.probe.alts=0",
            "--config.probe.train_limit=100", "--config.probe.fit_steps=4"]
    status = cli.main(args)
    assert status == 0
    run = tmp_path / "run"
    report = (run / "report" / "report.md").read_text()
    assert "Table 1" in report or "table 1" in report.lower()
    rows = [json.loads(line) for line in open(run / "results.jsonl")]
    assert {r["step"] for r in rows} == {0, 10}
    mtime = (run / "results.jsonl").stat().st_mtime
    capsys.readouterr()
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "already trained" in err and "kept" in err
    assert (run / "results.jsonl").stat().st_mtime == mtime
