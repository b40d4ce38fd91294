"""launch/tpu_vm.sh --dry-run: every command prints the gcloud/gsutil commands it would run, the
scripts it would run on the workers parse as bash, and bad requests are refused by name."""
import pytest

from tests.launch.dry_run import bash_syntax_error, dry_run, option, requirements_pin

SCRIPT = "tpu_vm.sh"
V4_8 = ["--name", "kj-icml", "--zone", "us-central2-b", "--accelerator-type", "v4-8",
        "--project", "my-project", "--bucket", "gs://my-bucket"]
SSH = ("gcloud", "compute", "tpus", "tpu-vm", "ssh", "kj-icml")
RUN_URL = "gs://my-bucket/runs/kj-icml"


def slice_of(accel, args=V4_8):
    """The options with another --accelerator-type (v4-32: 16 devices, 4 workers)."""
    return [a if a != "v4-8" else accel for a in args]


V4_32 = slice_of("v4-32")


def remote_script(argv):
    """The script an ssh command runs on the workers, checked to parse as bash."""
    script = option(argv, "--command")
    assert bash_syntax_error(script) == "", bash_syntax_error(script)
    return script


def worker_script(*args):
    """(the ssh command, the script it runs on the workers) of a dry run that succeeds with one
    ssh command."""
    run = dry_run(SCRIPT, *args)
    assert run.returncode == 0, run.stderr
    ssh = run.one(*SSH)
    return ssh, remote_script(ssh)


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
    assert "gcsfuse" not in script and "~/gcs" not in script   # gcs mode (default): no mount


def test_setup_from_git_clones_the_ref_instead_of_copying():
    run = dry_run(SCRIPT, "setup", *V4_8, "--repo-url", "https://example.com/kj.git", "--ref", "v1")
    assert run.returncode == 0, run.stderr
    assert run.find("tar") == [] and run.find("gcloud", "compute", "tpus", "tpu-vm", "scp") == []
    script = remote_script(run.one(*SSH))
    assert "git clone -q --depth 1 --branch v1 https://example.com/kj.git ~/kareljax" in script


def test_train_runs_distributed_on_every_worker_with_the_overrides():
    ssh, script = worker_script("train", *V4_8, "--", "--config.train.num_steps=100")
    assert option(ssh, "--worker") == "all"
    assert "export KARELJAX_DISTRIBUTED=1" in script
    assert f"workdir={RUN_URL}\n" in script
    assert ('.venv/bin/kareljax train --config configs/icml.py --workdir "$workdir" --no-progress '
            "--config.train.num_steps=100") in script
    assert "tee -a \"$log\"" in script and 'exit "$status"' in script


def test_train_detached_survives_the_ssh_session():
    _, script = worker_script("train", *V4_8, "--detach")
    assert script.startswith("setsid nohup bash -c ")
    assert "started in the background" in script


def test_train_on_a_pod_slice_refuses_a_batch_that_does_not_split_and_names_one_that_does():
    pod = slice_of("v4-64")
    refused = dry_run(SCRIPT, "train", *pod)
    assert refused.returncode == 2
    assert refused.commands == []
    assert "32 devices" in refused.stderr and "--config.train.batch_size=96" in refused.stderr
    accepted = dry_run(SCRIPT, "train", *pod, "--", "--config.train.batch_size=96")
    assert accepted.returncode == 0, accepted.stderr
    assert "--config.train.batch_size=96" in remote_script(accepted.one(*SSH))


def test_post_runs_the_probe_stages_in_order_on_worker_0():
    ssh, script = worker_script("post", *V4_8)
    assert option(ssh, "--worker") == "0"
    stages = ["kareljax eval --workdir \"$workdir\" --split test",
              "kareljax collect --workdir \"$workdir\" --steps all",
              "kareljax scan --workdir \"$workdir\" --profile paper",
              "kareljax report --workdir \"$workdir\""]
    positions = [script.index(s) for s in stages]
    assert positions == sorted(positions)
    assert "KARELJAX_DISTRIBUTED" not in script


def test_run_replaces_workdir_placeholder_with_the_run_directory():
    _, script = worker_script("run", *V4_8, "--", "eval", "--workdir", "@WORKDIR", "--split", "val")
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


@pytest.mark.parametrize("command", [["train", "--", "--config.train.batch_size=96"], ["post"],
                                     ["run", "--worker", "all", "--", "scan", "--workdir", "@WORKDIR"]])
def test_local_workdir_mode_is_refused_on_a_pod_slice(command):
    run = dry_run(SCRIPT, command[0], *slice_of("v4-64"), "--workdir-mode", "local", *command[1:])
    assert run.returncode == 2 and "single-host" in run.stderr
    assert run.commands == []


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


def test_all_on_a_pod_slice_runs_the_probe_stages_on_every_worker_then_the_report():
    run = dry_run(SCRIPT, "all", *slice_of("v4-64"), "--", "--config.train.batch_size=96")
    assert run.returncode == 0, run.stderr
    verbs = [c[4] if c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"] else c[0] for c in run.commands]
    assert verbs == ["create", "tar", "scp", "ssh", "ssh", "ssh", "ssh", "mkdir", "gsutil", "delete"]
    setup, train, post, report = run.find(*SSH)
    assert [option(c, "--worker") for c in (setup, train, post, report)] == ["all", "all", "all", "0"]
    assert "kareljax train" in remote_script(train)
    assert "kareljax scan" in remote_script(post) and "kareljax report" in remote_script(report)
    assert "left out" not in run.stderr


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


# ---------------------------------------------------------------------------------------------
# Run directories: gs:// (default), gcsfuse, local; the probe stages on pod slices.

def test_default_mode_passes_the_bucket_url_as_workdir_and_mounts_nothing():
    run = dry_run(SCRIPT, "all", *V4_8)
    assert run.returncode == 0, run.stderr
    setup, train, post = [remote_script(c) for c in run.find(*SSH)]
    assert "gcsfuse" not in setup and "mountpoint" not in setup
    for script in (train, post):
        assert f"workdir={RUN_URL}\n" in script
        assert "gcsfuse" not in script and "~/gcs" not in script
        assert "mkdir" not in script and "gsutil" not in script   # no folders, no rsync
    assert '.venv/bin/kareljax train --config configs/icml.py --workdir "$workdir"' in train
    for stage in ("eval", "collect", "scan", "report"):
        assert f'.venv/bin/kareljax {stage} --workdir "$workdir"' in post
    assert run.one("gsutil", "-m", "rsync")[-2:] == [RUN_URL, "runs/kj-icml"]   # copy-back


def test_setup_in_the_default_mode_needs_no_bucket():
    no_bucket = V4_8[:V4_8.index("--bucket")]
    run = dry_run(SCRIPT, "setup", *no_bucket)
    assert run.returncode == 0, run.stderr
    assert "gcsfuse" not in remote_script(run.one(*SSH))


def test_run_replaces_workdir_placeholder_with_the_bucket_url_in_the_default_mode():
    _, script = worker_script("run", *V4_8, "--", "scan", "--workdir=@WORKDIR", "--out", "@WORKDIR/x")
    assert f"workdir={RUN_URL}\n" in script
    assert '.venv/bin/kareljax scan --workdir="$workdir" --out "$workdir"/x' in script


def test_gcsfuse_mode_still_mounts_the_bucket_at_gcs():
    setup = dry_run(SCRIPT, "setup", *V4_8, "--workdir-mode", "gcsfuse")
    assert setup.returncode == 0, setup.stderr
    script = remote_script(setup.one(*SSH))
    assert "apt-get install -y -qq gcsfuse" in script
    assert ("gcsfuse --implicit-dirs --rename-dir-limit=1000000 --metadata-cache-ttl-secs=0 "
            "my-bucket ~/gcs") in script
    train = dry_run(SCRIPT, "train", *V4_8, "--workdir-mode=gcsfuse")
    assert train.returncode == 0, train.stderr
    script = remote_script(train.one(*SSH))
    assert "mountpoint -q ~/gcs || gcsfuse" in script
    assert "workdir=~/gcs/runs/kj-icml\n" in script
    assert 'mkdir -p "$(dirname "$workdir")"' in script


def test_setup_in_gcsfuse_mode_needs_the_bucket():
    no_bucket = V4_8[:V4_8.index("--bucket")]
    run = dry_run(SCRIPT, "setup", *no_bucket, "--workdir-mode", "gcsfuse")
    assert run.returncode == 2 and "setup needs --bucket" in run.stderr


@pytest.mark.parametrize("mode, workdir", [("gcs", RUN_URL), ("gcsfuse", "~/gcs/runs/kj-icml")])
def test_post_on_a_pod_slice_runs_the_stages_on_every_worker_then_the_report_on_worker_0(mode, workdir):
    run = dry_run(SCRIPT, "post", *V4_32, "--workdir-mode", mode)
    assert run.returncode == 0, run.stderr
    stages, report = run.find(*SSH)
    assert option(stages, "--worker") == "all"
    script = remote_script(stages)
    assert "export KARELJAX_DISTRIBUTED=1" in script
    assert f"workdir={workdir}\n" in script
    lines = ['.venv/bin/kareljax eval --workdir "$workdir" --split test',
             '.venv/bin/kareljax collect --workdir "$workdir" --steps all',
             '.venv/bin/kareljax scan --workdir "$workdir" --profile paper']
    positions = [script.index(s) for s in lines]
    assert positions == sorted(positions)
    assert "kareljax report" not in script
    assert option(report, "--worker") == "0"
    script = remote_script(report)
    assert '.venv/bin/kareljax report --workdir "$workdir"' in script
    assert "KARELJAX_DISTRIBUTED" not in script and "kareljax scan" not in script
    assert "4 workers" in run.stderr


def test_post_detached_on_a_pod_slice_reports_from_worker_0_after_its_scan():
    run = dry_run(SCRIPT, "post", *V4_32, "--detach")
    assert run.returncode == 0, run.stderr
    ssh = run.one(*SSH)   # one command: a second would not wait for the first
    assert option(ssh, "--worker") == "all"
    script = remote_script(ssh)
    assert script.startswith("setsid nohup bash -c ") and "export KARELJAX_DISTRIBUTED=1" in script
    scan = script.index("kareljax scan")
    guard = script.index("agent-worker-number)")
    report = script.index("kareljax report")
    assert scan < guard < report


def test_post_on_one_host_stays_on_worker_0_without_jax_distributed():
    ssh, script = worker_script("post", *V4_8, "--workdir-mode", "gcsfuse")
    assert option(ssh, "--worker") == "0"
    assert "KARELJAX_DISTRIBUTED" not in script and "kareljax report" in script


@pytest.mark.parametrize("stage", ["eval", "collect", "scan"])
def test_run_of_a_probe_stage_on_a_pod_slice_goes_to_every_worker(stage):
    run = dry_run(SCRIPT, "run", *V4_32, "--worker", "all", "--", stage, "--workdir", "@WORKDIR")
    assert run.returncode == 0, run.stderr
    ssh = run.one(*SSH)
    assert option(ssh, "--worker") == "all"
    script = remote_script(ssh)
    assert "export KARELJAX_DISTRIBUTED=1" in script
    assert f'.venv/bin/kareljax {stage} --workdir "$workdir"' in script
    assert "warning" not in run.stderr
    refused = dry_run(SCRIPT, "run", *V4_32, "--", stage, "--workdir", "@WORKDIR")
    assert refused.returncode == 2 and "--worker all" in refused.stderr
    assert refused.commands == []
    forced = dry_run(SCRIPT, "run", *V4_32, "--force", "--", stage, "--workdir", "@WORKDIR")
    assert forced.returncode == 0 and option(forced.one(*SSH), "--worker") == "0"


def test_run_of_report_on_a_pod_slice_runs_on_worker_0_and_warns_for_every_worker():
    run = dry_run(SCRIPT, "run", *V4_32, "--", "report", "--workdir", "@WORKDIR")
    assert run.returncode == 0, run.stderr
    assert option(run.one(*SSH), "--worker") == "0"
    everywhere = dry_run(SCRIPT, "run", *V4_32, "--worker", "all", "--", "report", "--workdir",
                         "@WORKDIR")
    assert everywhere.returncode == 0 and "'report' is single-process" in everywhere.stderr
