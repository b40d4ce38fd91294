"""launch/gpu_host.sh --dry-run: each command prints what it would run, in order, with the JAX
build requirements.txt pins, and bad requests are refused by name."""
import os
import sys

import pytest

from tests.launch.dry_run import REPO, dry_run, requirements_pin

SCRIPT = "gpu_host.sh"
KJ = ".venv/bin/kareljax"


def test_setup_makes_the_venv_and_installs_the_pinned_cuda_jax(tmp_path):
    venv = str(tmp_path / "venv")
    run = dry_run(SCRIPT, "setup", "--venv", venv)
    assert run.returncode == 0, run.stderr
    assert run.commands[0] == ["cd", str(REPO)]
    assert ["python3", "-m", "venv", venv] in run.commands
    install = run.commands[-1]
    assert install[:6] == [venv + "/bin/python", "-m", "pip", "install", "-r", "requirements.txt"]
    assert f"jax[cuda12]=={requirements_pin('jax')}" in install


def test_setup_keeps_an_existing_venv():
    existing = os.path.dirname(os.path.dirname(sys.executable))      # this test's environment
    run = dry_run(SCRIPT, "setup", "--venv", existing)
    assert run.returncode == 0, run.stderr
    assert not any(c[1:3] == ["-m", "venv"] for c in run.commands)
    assert run.commands[-1][0] == existing + "/bin/python"


def test_check_asks_the_driver_and_jax():
    run = dry_run(SCRIPT, "check")
    assert run.returncode == 0, run.stderr
    assert run.commands[1][0] == "nvidia-smi"
    assert "jax.devices()" in run.commands[2][-1]


def test_reproduce_passes_config_workdir_and_overrides():
    run = dry_run(SCRIPT, "reproduce", "--config", "configs/small.py", "--",
                  "--config.train.grad_accum=2")
    assert run.returncode == 0, run.stderr
    assert run.commands[-1] == [KJ, "reproduce", "--config", "configs/small.py", "--workdir",
                                "runs/small", "--config.train.grad_accum=2"]


def test_paper_runs_the_stages_in_order_with_the_paper_probe_profile():
    run = dry_run(SCRIPT, "paper")
    assert run.returncode == 0, run.stderr
    assert [c[:2] for c in run.commands[1:]] == [[KJ, s] for s in
                                                 ("train", "eval", "collect", "scan", "report")]
    assert run.one(KJ, "scan")[-2:] == ["--profile", "paper"]
    assert run.one(KJ, "collect")[-2:] == ["--steps", "all"]
    cpu = dry_run(SCRIPT, "paper", "--probe-profile", "cpu")
    assert cpu.one(KJ, "scan")[-2:] == ["--profile", "cpu"]


def test_stage_runs_any_kareljax_command():
    run = dry_run(SCRIPT, "stage", "--", "eval", "--workdir", "runs/icml", "--split", "test")
    assert run.returncode == 0, run.stderr
    assert run.commands[-1] == [KJ, "eval", "--workdir", "runs/icml", "--split", "test"]


def test_sync_copies_the_run_to_the_bucket_without_orbax_temporaries():
    run = dry_run(SCRIPT, "sync", "--bucket", "gs://my-bucket/")
    assert run.returncode == 0, run.stderr
    rsync = run.one("gsutil", "-m", "rsync")
    assert rsync[-2:] == ["runs/icml", "gs://my-bucket/runs/icml"]
    assert rsync[rsync.index("-x") + 1] == ".*orbax-checkpoint-tmp.*"


def test_all_is_setup_check_reproduce():
    run = dry_run(SCRIPT, "all")
    assert run.returncode == 0, run.stderr
    assert run.commands[1:] == (dry_run(SCRIPT, "setup").commands[1:]
                                + dry_run(SCRIPT, "check").commands[1:]
                                + dry_run(SCRIPT, "reproduce").commands[1:])


@pytest.mark.parametrize("args, message", [
    (["launch"], "unknown command 'launch'"),
    (["sync"], "sync needs --bucket gs://BUCKET"),
    (["sync", "--bucket", "gs://b"], "got 'gs://b'"),
    (["stage"], "give the kareljax command after --"),
    (["paper", "--probe-profile", "gpu"], "--probe-profile: paper or cpu"),
    (["paper", "--speed", "fast"], "unknown option --speed"),
    (["reproduce", "--", "--dry-run"], "put it before --"),
])
def test_bad_requests_are_refused_by_name_and_run_nothing(args, message):
    run = dry_run(SCRIPT, *args)
    assert run.returncode == 2
    assert message in run.stderr
    assert run.commands == []
