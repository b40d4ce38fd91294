"""Scan options from a named profile plus `name=value` overrides, and from a config's `probe`
section (what `kareljax scan` and `kareljax reproduce` use, and what `kareljax plan` compiles)."""
from __future__ import annotations

import dataclasses

import ml_collections
from ml_collections import config_dict

from kareljax.config_files import ConfigError, require

PROFILES = {
    "cpu": {"fit": {"steps": 60, "batch_size": 64, "eval_every": 30},
            "max_train_samples": 20_000, "max_eval_samples": 1024},
    "paper": {"fit": {"steps": 10_000, "batch_size": 1024, "eval_every": 500},
              "max_train_samples": 100_000, "max_eval_samples": 10_000},
}


def scan_options(profile: str, overrides: list[str]):
    """ScanOptions from a profile plus `name=value` overrides (ConfigDict-checked)."""
    from kareljax import config_files
    from kareljax.probe import fit, scan

    defaults = dataclasses.asdict(scan.ScanOptions())
    defaults["alts"] = ()
    config = ml_collections.ConfigDict(defaults)
    config.update(PROFILES[profile])
    for item in overrides:
        config_files.apply_override(config, item)
    values = config.to_dict()
    values["alts"] = tuple(values["alts"]) or None
    for key in ("depths", "tasks", "offsets", "statements"):
        values[key] = tuple(values[key])
    try:
        values["fit"] = fit.FitOptions(**values["fit"])
        return scan.ScanOptions(**values)
    except (ValueError, TypeError) as e:     # the options' own checks name the option
        raise config_files.ConfigError(str(e)) from e


def probe_section(**values) -> ml_collections.ConfigDict:
    """A config's `probe` section: what `kareljax reproduce` collects and how it scans, every
    option at its default (written here only) with `values` replacing some.

    train_limit: train specs collected (docs/spec.md §8: 50,000); alts: the alternative
    semantics traced besides the original ("0,3,5,8,11"); seeds, offsets: of the scan; profile:
    `PROFILES`' name; fit_steps: probe training steps (None: the profile's)."""
    from kareljax.probe import collect_run, labels
    section = ml_collections.ConfigDict({
        "train_limit": collect_run.DEFAULT_TRAIN_LIMIT, "alts": collect_run.DEFAULT_ALTS,
        "seeds": 3, "profile": "cpu", "fit_steps": config_dict.placeholder(int),
        "offsets": tuple(labels.OFFSETS)})
    unknown = sorted(set(values) - set(section.keys()))
    if unknown:
        raise ConfigError(f"probe: unknown options {unknown}; the section has "
                          f"{', '.join(sorted(section.keys()))}")
    section.update(values)
    return section


def probe_of(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config's probe section, checked (the defaults when it has none)."""
    probe = config.probe if "probe" in config else probe_section()
    validate_probe(probe)
    return probe


def validate_probe(probe: ml_collections.ConfigDict) -> None:
    """ConfigError naming the first probe option that cannot work."""
    from kareljax.probe import collect_run
    expected = set(probe_section().keys())
    require(set(probe.keys()) == expected, "probe",
            f"needs exactly the options {sorted(expected)} (build it with "
            f"kareljax.probe.options.probe_section), got {sorted(probe.keys())}")
    for name in ("train_limit", "seeds"):
        require(isinstance(probe[name], int) and probe[name] >= 1, f"probe.{name}",
                f"must be an integer >= 1, got {probe[name]!r}")
    require(probe.fit_steps is None or (isinstance(probe.fit_steps, int) and probe.fit_steps >= 1),
            "probe.fit_steps", f"must be an integer >= 1 (or None), got {probe.fit_steps!r}")
    require(probe.profile in PROFILES, "probe.profile",
            f"one of {sorted(PROFILES)}, got {probe.profile!r}")
    require(len(probe.offsets) >= 1 and all(isinstance(o, int) for o in probe.offsets),
            "probe.offsets", f"a tuple of integers like (-1, 0), got {probe.offsets!r}")
    collect_run.parse_alts(str(probe.alts), "probe.alts")


def scan_overrides(probe: ml_collections.ConfigDict) -> list[str]:
    """The scan overrides a config's probe section sets (seeds, offsets, fit_steps)."""
    out = [f"seeds={probe.seeds}", f"offsets={tuple(probe.offsets)}"]
    if probe.fit_steps is not None:
        out += [f"fit.steps={probe.fit_steps}", f"fit.eval_every={max(1, probe.fit_steps // 2)}"]
    return out


def config_scan_options(config: ml_collections.ConfigDict, profile: str | None = None):
    """The ScanOptions `kareljax reproduce` scans a config's run with (`profile` given: that
    profile with the config's seeds only, e.g. "paper")."""
    probe = probe_of(config)
    if profile is not None:
        return scan_options(profile, [f"seeds={probe.seeds}"])
    return scan_options(probe.profile, scan_overrides(probe))
