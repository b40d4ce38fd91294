"""A config's probe section: what collect gathers and scan trains, built from the options'
dataclasses, checked, overridable, and read back from a run's config.json."""
import json

import pytest

from kareljax import config_files
from kareljax.config_files import ConfigError
from kareljax.probe import collect_run, labels, options, scan
from kareljax.train import train_config


def test_a_probe_section_sets_collection_and_scan_options():
    config = config_files.load("configs/small.py")
    options.probe_of(config)
    opts = options.config_scan_options(config)
    assert opts.offsets == (-1, 0) and opts.seeds == 1
    assert (opts.fit.steps, opts.fit.eval_every) == (100, 50)
    assert opts.max_train_samples == options.PROFILES["cpu"]["max_train_samples"]
    collect = options.collect_options(config.probe, steps="all")
    assert (collect.train_limit, collect.alts, collect.forced_baseline) == (3000, "8,11", True)
    changed = config_files.load("configs/small.py", ["probe.scan.offsets=(-2,-1,0)"])
    assert options.config_scan_options(changed).offsets == (-2, -1, 0)


def test_profiles_are_variants_of_the_scan_budget():
    tiny = options.config_scan_options(config_files.load("configs/tiny.py"))
    assert tiny.offsets == labels.OFFSETS and tiny.fit.steps == 60
    icml = options.config_scan_options(config_files.load("configs/icml.py"))
    assert (icml.fit.steps, icml.fit.batch_size, icml.seeds) == (10_000, 1024, 5)
    # The paper profile is the dataclasses' defaults; asked for by name it keeps the rest.
    assert icml.fit == scan.ScanOptions().fit
    paper = options.config_scan_options(config_files.load("configs/small.py"), "paper")
    assert (paper.fit.steps, paper.seeds, paper.offsets) == (10_000, 1, (-1, 0))


def test_the_section_is_checked_and_every_option_can_be_overridden():
    tiny = config_files.load("configs/tiny.py", ["probe.scan.offsets=(-1,0)",
                                                 "probe.collect.alts=8"])
    train_config.validate(tiny)
    assert options.probe_of(tiny).scan.offsets == (-1, 0)
    for override, option in [("probe.scan.seeds=0", "probe.scan.seeds"),
                             ("probe.collect.alts=99", "probe.collect.alts"),
                             ("probe.scan.fit.steps=0", "probe.scan.fit.steps"),
                             ("probe.scan.tasks=('colour',)", "probe.scan.tasks"),
                             ("probe.collect.train_limit=0", "probe.collect.train_limit")]:
        with pytest.raises(ConfigError, match=option):
            train_config.validate(config_files.load("configs/tiny.py", [override]))
    with pytest.raises(ConfigError, match="probe.collect.train_limits: unknown option"):
        options.probe_section(collect={"train_limits": 5})
    with pytest.raises(ConfigError, match="probe profile"):
        options.probe_section("fast")


def test_every_default_is_the_dataclasses_own():
    section = options.probe_section("paper")
    defaults = collect_run.CollectOptions()
    assert section.collect.train_limit == defaults.train_limit == 50_000
    assert options.scan_options(section) == scan.ScanOptions()
    assert options.probe_section(scan={"seeds": 5}).to_dict() == {
        **options.probe_section().to_dict(),
        "scan": {**options.probe_section().scan.to_dict(), "seeds": 5}}


def test_a_run_reads_its_section_from_config_json_with_overrides(tmp_path):
    config = config_files.load("configs/quick.py")
    (tmp_path / "config.json").write_text(json.dumps(json.loads(config.to_json())))
    probe = options.run_probe(str(tmp_path), ["probe.scan.seeds=2"], profile="paper")
    assert options.scan_options(probe).offsets == (-1, 0)       # lists read back as tuples
    assert probe.scan.seeds == 2 and probe.scan.fit.steps == 10_000
    assert options.scan_overrides(["fit.steps=8", "probe.collect.alts=0"]) == [
        "probe.scan.fit.steps=8", "probe.collect.alts=0"]
    # A section of an earlier form (flat): its defaults serve, with a warning naming it.
    stale = {**json.loads(config.to_json()), "probe": {"fit_steps": 4, "alts": "8"}}
    (tmp_path / "config.json").write_text(json.dumps(stale))
    with pytest.warns(UserWarning, match="probe.(fit_steps|alts): unknown option"):
        probe = options.run_probe(str(tmp_path), ["probe.collect.alts=8,11"])
    assert probe.collect.alts == "8,11" and probe.scan == options.probe_section().scan
