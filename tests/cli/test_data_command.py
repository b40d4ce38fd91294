"""`kareljax data build` and `kareljax data export`, and their rejection of bad options."""
import pathlib
import re

import pytest

from kareljax import cli
from kareljax.karel import parser, records, reference, world

SMALL = ["--config.data.num_train=200", "--config.data.num_val=100", "--config.data.num_test=100"]


def test_export_builds_then_writes_golden_records(tmp_path, capsys):
    out = tmp_path / "test.jsonl.gz"
    status = cli.main(["data", "export", "--config", "configs/icml_cpu.py", *SMALL,
                       "--data-dir", str(tmp_path), "--split", "test", "--limit", "30",
                       "--output", str(out)])
    assert status == 0
    written = records.read_records(out)
    assert len(written) == 30
    _assert_outputs_are_the_programs_effect(written)
    assert cli.main(["data", "build", "--config", "icml_cpu", *SMALL,
                     "--data-dir", str(tmp_path)]) == 0
    assert "already built" in capsys.readouterr().err


def _assert_outputs_are_the_programs_effect(written: list[dict]) -> None:
    for record in written:
        program = parser.parse(record["code"])
        assert set(record) >= {"code", "examples"} and len(record["examples"]) == 10
        for example in record["examples"]:
            final = reference.run(program, world.from_text(example["input"])).world
            assert example["output"] == world.to_text(final)


@pytest.mark.parametrize("preset", ["cond_cpu", "colm_cpu"])
def test_export_of_the_control_flow_and_colm_presets(tmp_path, capsys, preset):
    out = tmp_path / "test.jsonl"
    assert cli.main(["data", "export", "--config", preset, *SMALL, "--data-dir", str(tmp_path),
                     "--split", "test", "--limit", "40", "--output", str(out)]) == 0
    # The build (all three splits) reports its progress per split, and TFDS's "Downloading and
    # preparing dataset Unknown size ..." lines (nothing is downloaded) are not printed.
    captured = capsys.readouterr()
    assert "ownload" not in captured.out + captured.err
    bars = captured.err.replace("\r", "\n")
    for split in ("train", "val", "test"):       # the dataset's name: preset_<options digest>
        assert re.search(rf"\b{preset}_[0-9a-f]+/{split}: 100%", bars), bars
    written = records.read_records(out)
    assert len(written) == 40
    _assert_outputs_are_the_programs_effect(written)
    codes = [record["code"] for record in written]
    if preset == "cond_cpu":
        assert any(word in code for code in codes for word in ("if", "while", "repeat"))
    else:       # COLM's reference programs: 15 straight-line actions each
        assert all(len(parser.parse(code).body) == 15 for code in codes)


@pytest.mark.parametrize("args, message", [
    (["--config", "icml_gpu"], "no config file or preset named 'icml_gpu'"),
    (["--config", "icml_cpu", "--config.data.min_length=12"], "min_length"),
    (["--config", "icml_cpu", "--config.data.num_test=5"], "num_test"),
    (["--config", "cond_cpu", "--config.data.max_length=1", "--config.data.train_lengths=()"],
     "max_length"),
    (["--config", "icml_cpu", "--config.data.colour=red"], "unknown option"),
])
def test_bad_options_are_rejected_before_any_work(tmp_path, capsys, args, message):
    status = cli.main(["data", "build", *args, "--data-dir", str(tmp_path / "d")])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not pathlib.Path(tmp_path / "d").exists()


def test_export_rejects_an_unknown_split(tmp_path, capsys):
    status = cli.main(["data", "export", "--config", "icml_cpu", "--split", "dev",
                       "--data-dir", str(tmp_path / "d"), "--output", str(tmp_path / "x")])
    assert status == 2 and "split" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
