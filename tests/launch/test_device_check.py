"""benchmarks/device_check.sh, the prepared GPU check: its steps, their time limits (inside the
device tool's 600 s a command) and its config, without a GPU."""
from kareljax import config_files
from kareljax.train import train_config
from tests.launch.dry_run import REPO, dry_run, requirements_pin

SCRIPT = "benchmarks/device_check.sh"


def check(tmp_path, *args, wheels=()):
    """The dry run with a wheel folder of its own (empty by default), whatever .whl/ holds here."""
    folder = tmp_path / "wheels"
    folder.mkdir(exist_ok=True)
    for name in wheels:
        (folder / name).touch()
    return dry_run(SCRIPT, *args, env={"KARELJAX_WHEELS": str(folder)})


def limits(run):
    assert all(c[0] == "timeout" for c in run.commands), run.commands
    return [int(c[1]) for c in run.commands]


def test_the_check_measures_mfu_then_trains_and_evaluates_within_the_command_limit(tmp_path):
    run = check(tmp_path)
    assert run.returncode == 0, run.stderr
    text = [" ".join(c[2:]) for c in run.commands]
    assert "benchmarks/train.py --mfu" in text[1]
    assert "-m kareljax train --config configs/gpu_mid.py" in text[2]
    assert "-m kareljax eval" in text[3] and "--split test" in text[3]
    assert sum(limits(run)) <= 570


def test_smoke_leaves_out_the_mfu_and_shrinks_the_run(tmp_path):
    run = check(tmp_path, "--smoke", "--train-seconds", "100")
    assert run.returncode == 0, run.stderr
    text = [" ".join(c[2:]) for c in run.commands]
    assert not any("--mfu" in t for t in text)
    train = next(c for c in run.commands if "train" in c and "--config" in c)
    assert train[1] == "100"
    assert "--config.train.num_steps=20" in train and "--config.model.d_model=64" in train


def test_wheels_are_installed_first_and_every_limit_fits_the_command_limit(tmp_path):
    run = check(tmp_path, wheels=("ml_collections-1.1.0-py3-none-any.whl",))
    assert run.returncode == 0, run.stderr
    install = run.commands[0]
    assert install[2:6] == ["python3", "-m", "pip", "install"] and "--target" in install
    assert install[-1].endswith("ml_collections-1.1.0-py3-none-any.whl")
    assert sum(limits(run)) <= 600


def test_bad_arguments_are_refused():
    for args in (["--train-seconds", "soon"], ["--fast"]):
        run = dry_run(SCRIPT, *args)
        assert run.returncode == 2 and run.commands == [], args


def test_the_gpu_config_is_valid_and_mid_sized():
    config = config_files.load(str(REPO / "configs" / "gpu_mid.py"), [])
    train_config.validate(config)
    size = train_config.model_size(config.model)
    assert (size.d_model, size.n_layers) == (512, 8)
    assert (config.data.world_height, config.data.world_width) == (8, 8)
    assert config.train.data_source == "fresh" and config.model.dtype == "bfloat16"


def test_the_device_wheels_are_pinned_as_in_requirements():
    pins = [line.strip() for line in (REPO / "benchmarks" / "device_wheels.txt").read_text()
            .splitlines() if line.strip() and not line.startswith("#")]
    shared = 0
    for pin in pins:
        name, version = pin.split("==")
        try:
            wanted = requirements_pin(name)
        except AssertionError:
            continue                       # a dependency of a requirement, not pinned there
        assert version == wanted, f"{name}: {version} in device_wheels.txt, {wanted} in requirements"
        shared += 1
    assert shared >= 10
