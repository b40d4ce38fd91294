"""Scan options from a named profile plus `name=value` overrides, and from a config's `probe`
section (what `kareljax scan` and `kareljax reproduce` use, and what `kareljax plan` compiles)."""
from __future__ import annotations

import dataclasses

import ml_collections

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


def probe_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config's `probe` section (empty if it has none)."""
    return config.probe if "probe" in config else ml_collections.ConfigDict()


def scan_overrides(probe: ml_collections.ConfigDict) -> list[str]:
    """The scan overrides a config's probe section sets (seeds, offsets, fit_steps)."""
    out = [f"seeds={probe.get('seeds', 3)}"]
    if "offsets" in probe:
        out.append(f"offsets={tuple(probe.offsets)}")
    if "fit_steps" in probe:
        out += [f"fit.steps={probe.fit_steps}", f"fit.eval_every={max(1, probe.fit_steps // 2)}"]
    return out


def config_scan_options(config: ml_collections.ConfigDict, profile: str | None = None):
    """The ScanOptions `kareljax reproduce` scans a config's run with (`profile` given: that
    profile with the config's seeds only, e.g. "paper")."""
    probe = probe_section(config)
    if profile is not None:
        return scan_options(profile, [f"seeds={probe.get('seeds', 3)}"])
    return scan_options(probe.get("profile", "cpu"), scan_overrides(probe))
