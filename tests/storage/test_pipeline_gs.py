"""The whole pipeline on a gs:// run directory, against the local emulator: `train` killed with
SIGKILL and resumed, then `eval`, `collect`, `scan` and `report`; the objects are checked through
the Cloud Storage client, and nothing lands on the local disk under the run directory's name."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from kareljax import cli
from tests.micro import micro_overrides

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 100


def _objects(client, bucket: str, prefix: str) -> set[str]:
    return {blob.name[len(prefix):] for blob in client.list_blobs(bucket, prefix=prefix)}


def test_the_pipeline_on_a_gs_run_directory(gcs_emulator, gcs_client, tmp_path, monkeypatch,
                                            capsys):
    prefix = "runs/micro/"
    workdir = f"gs://{gcs_emulator.bucket}/{prefix.rstrip('/')}"
    overrides = [*micro_overrides(tmp_path / "data"), f"--config.train.num_steps={STEPS}",
                 "--config.train.checkpoint_every=50", "--config.train.keep_latest_every=10"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    train = ["train", "--config", "tiny", "--workdir", workdir, "--no-progress", *overrides]

    # Killed once a rolling checkpoint is in the bucket.
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO,
               XLA_FLAGS="--xla_force_host_platform_device_count=1")
    process = subprocess.Popen([sys.executable, "-m", "kareljax", *train], env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not any(name.startswith("checkpoints/20/")      # so step 10's is complete
                  for name in _objects(gcs_client, gcs_emulator.bucket, prefix)):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no checkpoint reached the bucket"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    killed = _objects(gcs_client, gcs_emulator.bucket, prefix)
    assert not any(n.startswith(f"checkpoints/{STEPS}/") for n in killed)

    assert cli.main(train) == 0                                      # resumes
    assert cli.main(["eval", "--workdir", workdir, "--split", "test"]) == 0
    assert cli.main(["collect", "--workdir", workdir, "--steps", f"0,{STEPS}"]) == 0
    assert cli.main(["scan", "--workdir", workdir]) == 0
    assert cli.main(["report", "--workdir", workdir]) == 0
    out = capsys.readouterr().out
    assert f"trained {STEPS} steps in {workdir}" in out

    names = _objects(gcs_client, gcs_emulator.bucket, prefix)
    for name in ("config.json", "metrics.jsonl", f"eval/step_{STEPS}_test.json",
                 f"eval/step_{STEPS}_test.jsonl", "collect/step_00000000/index.json",
                 f"collect/step_{STEPS:08d}/index.json", "results.jsonl", "results.csv",
                 "report/report.md", "report/progress.png"):
        assert name in names, (name, sorted(names))
    assert any(n.startswith(f"checkpoints/{STEPS}/") for n in names)
    assert any(n.startswith("tensorboard/") for n in names)
    bucket = gcs_client.bucket(gcs_emulator.bucket)
    metrics = [json.loads(line) for line in
               bucket.blob(prefix + "metrics.jsonl").download_as_text().splitlines()]
    assert [r["event"] for r in metrics if r.get("event") in ("resumed", "finished")] == [
        "resumed", "finished"]
    summary = json.loads(bucket.blob(prefix + f"eval/step_{STEPS}_test.json").download_as_text())
    assert summary["step"] == STEPS and 0 <= summary["correct"] <= 1
    rows = bucket.blob(prefix + "results.jsonl").download_as_text().splitlines()
    assert {json.loads(r)["step"] for r in rows} == {0, STEPS}
    assert "Table 1" in bucket.blob(prefix + "report/report.md").download_as_text()
    # Nothing on the local disk under the run directory's name (nor anything else here).
    assert list(cwd.iterdir()) == []
