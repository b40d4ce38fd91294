"""Scan options from a config's probe section (what reproduce scans with, what plan compiles)."""
from kareljax import config_files
from kareljax.probe import labels, options


def test_a_probe_section_sets_seeds_offsets_and_fit_steps():
    config = config_files.load("configs/small.py")
    scan = options.config_scan_options(config)
    assert scan.offsets == (-1, 0) and scan.seeds == 1
    assert (scan.fit.steps, scan.fit.eval_every) == (100, 50)
    assert scan.max_train_samples == options.PROFILES["cpu"]["max_train_samples"]
    changed = config_files.load("configs/small.py", ["probe.offsets=(-2,-1,0)"])
    assert options.config_scan_options(changed).offsets == (-2, -1, 0)


def test_without_a_section_the_defaults_and_the_paper_profile_for_icml():
    tiny = options.config_scan_options(config_files.load("configs/tiny.py"))
    assert tiny.offsets == labels.OFFSETS
    icml = options.config_scan_options(config_files.load("configs/icml.py"))
    assert (icml.fit.steps, icml.fit.batch_size, icml.seeds) == (10_000, 1024, 5)
    # The paper profile asked for by name keeps the config's seeds only.
    paper = options.config_scan_options(config_files.load("configs/small.py"), "paper")
    assert (paper.fit.steps, paper.seeds, paper.offsets) == (10_000, 1, labels.OFFSETS)


def test_the_probe_section_is_checked_and_every_option_can_be_overridden():
    import pytest
    from kareljax.config_files import ConfigError
    from kareljax.train import train_config
    tiny = config_files.load("configs/tiny.py", ["probe.offsets=(-1,0)", "probe.alts=8"])
    train_config.validate(tiny)
    assert options.probe_of(tiny).offsets == (-1, 0)
    for override, option in [("probe.seeds=0", "probe.seeds"), ("probe.alts=99", "probe.alts"),
                             ("probe.profile=fast", "probe.profile"),
                             ("probe.fit_steps=0", "probe.fit_steps")]:
        with pytest.raises(ConfigError, match=option):
            train_config.validate(config_files.load("configs/tiny.py", [override]))
    with pytest.raises(ConfigError, match="unknown options"):
        options.probe_section(train_limits=5)
    # Every default is written once: a config's section is the defaults with its own values.
    assert options.probe_section(seeds=5).to_dict() == {**options.probe_section().to_dict(),
                                                        "seeds": 5}
