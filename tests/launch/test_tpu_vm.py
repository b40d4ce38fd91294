"""launch/tpu_vm.sh --dry-run: every command prints the gcloud/gsutil commands it would run, the
scripts it would run on the workers parse as bash, and bad requests are refused by name."""
import pytest

from tests.launch.dry_run import bash_syntax_error, dry_run, option, requirements_pin

SCRIPT = "tpu_vm.sh"
V4_8 = ["--name", "kj-icml", "--zone", "us-central2-b", "--accelerator-type", "v4-8",
        "--project", "my-project", "--bucket", "gs://my-bucket"]
SSH = ("gcloud", "compute", "tpus", "tpu-vm", "ssh", "kj-icml")


def remote_script(argv):
    """The script an ssh command runs on the workers, checked to parse as bash."""
    script = option(argv, "--command")
    assert bash_syntax_error(script) == "", bash_syntax_error(script)
    return script


def test_create_names_the_vm_type_zone_project_and_runtime():
    run = dry_run(SCRIPT, "create", *V4_8, "--spot")
    assert run.returncode == 0, run.stderr
    create = run.one("gcloud", "compute", "tpus", "tpu-vm", "create", "kj-icml")
    assert option(create, "--accelerator-type") == "v4-8"
    assert option(create, "--zone") == "us-central2-b"
    assert option(create, "--project") == "my-project"
    assert option(create, "--version") == "tpu-ubuntu2204-base"
    assert "--spot" in create
    assert "4 JAX devices, 1 worker(s)" in run.stderr
    assert len(run.commands) == 1


def test_setup_copies_the_checkout_and_installs_the_pinned_jax_on_every_worker():
    run = dry_run(SCRIPT, "setup", *V4_8)
    assert run.returncode == 0, run.stderr
    tar = run.one("tar")
    assert "--exclude=./.git" in tar and "--exclude=./runs" in tar
    scp = run.one("gcloud", "compute", "tpus", "tpu-vm", "scp")
    assert option(scp, "--worker") == "all"
    ssh = run.one(*SSH)
    assert option(ssh, "--worker") == "all"
    script = remote_script(ssh)
    assert f'"jax[tpu]=={requirements_pin("jax")}"' in script
    assert "pip install -q -r requirements.txt -e ." in script
    assert "kareljax data build --config configs/icml.py" in script
    assert "gcsfuse" in script and "my-bucket ~/gcs" in script


def test_setup_from_git_clones_the_ref_instead_of_copying():
    run = dry_run(SCRIPT, "setup", *V4_8, "--repo-url", "https://example.com/kj.git", "--ref", "v1")
    assert run.returncode == 0, run.stderr
    assert run.find("tar") == [] and run.find("gcloud", "compute", "tpus", "tpu-vm", "scp") == []
    script = remote_script(run.one(*SSH))
    assert "git clone -q --depth 1 --branch v1 https://example.com/kj.git ~/kareljax" in script


def test_train_runs_distributed_on_every_worker_with_the_overrides():
    run = dry_run(SCRIPT, "train", *V4_8, "--", "--config.train.num_steps=100")
    assert run.returncode == 0, run.stderr
    ssh = run.one(*SSH)
    assert option(ssh, "--worker") == "all"
    script = remote_script(ssh)
    assert "export KARELJAX_DISTRIBUTED=1" in script
    assert "workdir=~/gcs/runs/kj-icml" in script
    assert ('.venv/bin/kareljax train --config configs/icml.py --workdir "$workdir" --no-progress '
            "--config.train.num_steps=100") in script
    assert "tee -a \"$log\"" in script and 'exit "$status"' in script


def test_train_detached_survives_the_ssh_session():
    run = dry_run(SCRIPT, "train", *V4_8, "--detach")
    assert run.returncode == 0, run.stderr
    script = remote_script(run.one(*SSH))
    assert script.startswith("setsid nohup bash -c ")
    assert "started in the background" in script


def test_train_on_a_pod_slice_refuses_a_batch_that_does_not_split_and_names_one_that_does():
    pod = [a if a != "v4-8" else "v4-64" for a in V4_8]
    refused = dry_run(SCRIPT, "train", *pod)
    assert refused.returncode == 2
    assert refused.commands == []
    assert "32 devices" in refused.stderr and "--config.train.batch_size=96" in refused.stderr
    accepted = dry_run(SCRIPT, "train", *pod, "--", "--config.train.batch_size=96")
    assert accepted.returncode == 0, accepted.stderr
    assert "--config.train.batch_size=96" in remote_script(accepted.one(*SSH))


def test_post_runs_the_probe_stages_in_order_on_worker_0():
    run = dry_run(SCRIPT, "post", *V4_8)
    assert run.returncode == 0, run.stderr
    ssh = run.one(*SSH)
    assert option(ssh, "--worker") == "0"
    script = remote_script(ssh)
    stages = ["kareljax eval --workdir \"$workdir\" --split test",
              "kareljax collect --workdir \"$workdir\" --steps all",
              "kareljax scan --workdir \"$workdir\" --profile paper",
              "kareljax report --workdir \"$workdir\""]
    positions = [script.index(s) for s in stages]
    assert positions == sorted(positions)
    assert "KARELJAX_DISTRIBUTED" not in script


def test_run_replaces_workdir_placeholder_with_the_run_directory():
    run = dry_run(SCRIPT, "run", *V4_8, "--", "eval", "--workdir", "@WORKDIR", "--split", "val")
    assert run.returncode == 0, run.stderr
    script = remote_script(run.one(*SSH))
    assert '.venv/bin/kareljax eval --workdir "$workdir" --split val' in script


def test_local_workdir_mode_resumes_from_and_syncs_to_the_bucket():
    run = dry_run(SCRIPT, "train", *V4_8, "--workdir-mode", "local", "--sync-every", "600")
    assert run.returncode == 0, run.stderr
    script = remote_script(run.one(*SSH))
    assert "workdir=~/kareljax/runs/kj-icml" in script
    assert "url=gs://my-bucket/runs/kj-icml" in script
    assert "while sleep 600; do sync_up; done" in script
    assert script.index("kareljax train") < script.rindex("sync_up")  # a last sync after training
    assert "gcsfuse" not in script


def test_local_workdir_mode_is_refused_on_a_pod_slice():
    pod = [a if a != "v4-8" else "v4-64" for a in V4_8]
    run = dry_run(SCRIPT, "train", *pod, "--workdir-mode", "local", "--",
                  "--config.train.batch_size=96")
    assert run.returncode == 2 and "single-host" in run.stderr


def test_copy_back_without_checkpoints_excludes_them():
    run = dry_run(SCRIPT, "copy-back", *V4_8, "--no-checkpoints")
    assert run.returncode == 0, run.stderr
    rsync = run.one("gsutil", "-m", "rsync")
    assert rsync[-2:] == ["gs://my-bucket/runs/kj-icml", "runs/kj-icml"]
    assert rsync[rsync.index("-x") + 1] == "(corrupt_|nonfinite_)?checkpoints/.*"
    with_checkpoints = dry_run(SCRIPT, "copy-back", *V4_8).one("gsutil", "-m", "rsync")
    assert "-x" not in with_checkpoints


def test_all_on_one_host_runs_every_stage_then_deletes():
    run = dry_run(SCRIPT, "all", *V4_8)
    assert run.returncode == 0, run.stderr
    verbs = [c[4] if c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"] else c[0] for c in run.commands]
    assert verbs == ["create", "tar", "scp", "ssh", "ssh", "ssh", "mkdir", "gsutil", "delete"]
    train, post = [remote_script(c) for c in run.find(*SSH)][1:]
    assert "kareljax train" in train and "kareljax scan" in post
    kept = dry_run(SCRIPT, "all", *V4_8, "--keep")
    assert kept.find("gcloud", "compute", "tpus", "tpu-vm", "delete") == []
    assert "still running (and billed)" in kept.stderr


def test_all_on_a_pod_slice_leaves_the_probe_stages_out_and_says_how_to_run_them():
    pod = [a if a != "v4-8" else "v4-64" for a in V4_8]
    run = dry_run(SCRIPT, "all", *pod, "--", "--config.train.batch_size=96")
    assert run.returncode == 0, run.stderr
    scripts = [remote_script(c) for c in run.find(*SSH)]
    assert not any("kareljax scan" in s for s in scripts)
    assert "probe stages (single-process) are left out" in run.stderr
    assert "--name kj-icml-post --accelerator-type v4-8" in run.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--zone", "z"], "--name is required"),
    (["train", "--name", "Bad_Name"], "--name: lowercase letters"),
    (["frobnicate", "--name", "kj"], "unknown command 'frobnicate'"),
    (["train", "--name", "kj"], "train needs --bucket gs://BUCKET"),
    (["train", "--name", "kj", "--bucket", "gs://Not A Bucket"], "--bucket"),
    (["train", "--name", "kj", "--bucket", "gs://bk1", "--workdir-mode", "nfs"], "--workdir-mode"),
    (["train", "--name", "kj", "--bucket", "gs://bk1", "--colour", "red"], "unknown option --colour"),
    (["run", "--name", "kj", "--bucket", "gs://bk1"], "give the kareljax command after --"),
])
def test_bad_requests_are_refused_by_name_and_run_nothing(args, message):
    run = dry_run(SCRIPT, *args)
    assert run.returncode == 2
    assert message in run.stderr
    assert run.commands == []


def test_dry_run_after_the_separator_is_refused():
    # dry_run() puts --dry-run before "--"; here it is also after it, where kareljax would get it.
    run = dry_run(SCRIPT, "train", *V4_8, "--", "--dry-run")
    assert run.returncode == 2 and "put it before --" in run.stderr
