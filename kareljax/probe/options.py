"""A config's `probe` section: what a run collects for the probes and how it scans them.

    probe.collect: train_limit, alts, per_layer, forced_baseline, batch_size  (CollectOptions)
    probe.scan:    depths, tasks, offsets, seeds, alts, example, ..., fit.*    (ScanOptions)

Every default is the dataclasses' own (`collect_run.CollectOptions`, `scan.ScanOptions`,
`fit.FitOptions`); the section is built from them, so each is written once. A profile is a
variant of the scan's sizes (probe training budget and sample limits): `paper` is the
dataclasses' defaults (docs/spec.md §9), `cpu` a short budget for this CPU. `kareljax collect`
and `kareljax scan` read the run's section from its config.json and take overrides like any
other (`--config.probe.scan.seeds=5`, `--config.probe.collect.train_limit=1000`).
"""
from __future__ import annotations

import dataclasses
import warnings

import ml_collections

from kareljax.config_files import ConfigError, apply_override, require

# Profiles: a budget for the scan (probe training and sample limits); `paper` is the defaults'.
PROFILES = {
    "paper": None,
    "cpu": {"fit": {"steps": 60, "batch_size": 64, "eval_every": 30},
            "max_train_samples": 20_000, "max_eval_samples": 1024},
}
DEFAULT_PROFILE = "cpu"
# Collection options that are a run's choice of the moment, not its config's.
_RUN_TIME_COLLECT = ("steps", "splits", "limit", "forced", "overwrite")


def _collect_defaults() -> dict:
    from kareljax.probe import collect_run
    values = dataclasses.asdict(collect_run.CollectOptions())
    return {k: v for k, v in values.items() if k not in _RUN_TIME_COLLECT}


def _budget(profile: str) -> dict:
    """The scan options profile `profile` sets."""
    if PROFILES[profile] is not None:
        return PROFILES[profile]
    defaults = _scan_defaults()
    budget = PROFILES[DEFAULT_PROFILE]
    return {k: ({f: defaults[k][f] for f in v} if isinstance(v, dict) else defaults[k])
            for k, v in budget.items()}


def _scan_defaults() -> dict:
    from kareljax.probe import scan
    values = dataclasses.asdict(scan.ScanOptions())
    values["alts"] = ()                          # () in a config: every collected alternative
    return values


def probe_section(profile: str = DEFAULT_PROFILE, collect: dict | None = None,
                  scan: dict | None = None) -> ml_collections.ConfigDict:
    """The section at its defaults, with `profile`'s scan sizes and then `collect` and `scan`
    (nested dicts, e.g. scan={"seeds": 1, "fit": {"steps": 40}}) replacing values."""
    require(profile in PROFILES, "probe profile", f"one of {sorted(PROFILES)}, got {profile!r}")
    section = ml_collections.ConfigDict({"collect": _collect_defaults(),
                                         "scan": _scan_defaults()})
    _update(section.scan, _budget(profile), "probe.scan")
    _update(section.collect, collect or {}, "probe.collect")
    _update(section.scan, scan or {}, "probe.scan")
    return section


def _update(node: ml_collections.ConfigDict, values, where: str) -> None:
    """`values` (a dict or ConfigDict; lists, as config.json gives them, read as tuples) set
    into `node`; ConfigError naming an option `node` does not have."""
    for key, value in values.items():
        require(key in node, f"{where}.{key}",
                f"unknown option; {where} has {', '.join(sorted(node.keys()))}")
        if isinstance(value, (dict, ml_collections.ConfigDict)):
            _update(node[key], value, f"{where}.{key}")
        else:
            node[key] = tuple(value) if isinstance(value, list) else value


def probe_of(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config's probe section, checked (the defaults when it has none)."""
    probe = config.probe if "probe" in config else probe_section()
    validate_probe(probe)
    return probe


def with_overrides(config: ml_collections.ConfigDict, overrides: list[str],
                   profile: str | None = None) -> ml_collections.ConfigDict:
    """A copy of `config` (given a default probe section if it has none) with `profile`'s scan
    sizes and then `overrides` ("probe.scan.seeds=5", ...) applied, checked."""
    config = ml_collections.ConfigDict(config.to_dict())
    stored = config.probe if "probe" in config else {}
    config.probe = probe_section()
    try:
        _update(config.probe, stored, "probe")
    except ConfigError as e:    # a section of an earlier form: the probe settings are no part of
        config.probe = probe_section()      # a run's identity, so its defaults serve
        warnings.warn(f"the run's probe section is not of this kareljax's form ({e}); its "
                      "defaults are used, and --config.probe.* overrides them", stacklevel=2)
    if profile is not None:
        require(profile in PROFILES, "--profile", f"one of {sorted(PROFILES)}, got {profile!r}")
        _update(config.probe.scan, _budget(profile), "probe.scan")
    for item in overrides:
        apply_override(config, item)
    validate_probe(config.probe)
    return config


def validate_probe(probe: ml_collections.ConfigDict) -> None:
    """ConfigError naming the first probe option that cannot work."""
    expected = probe_section()
    for part in ("collect", "scan"):
        have = set(probe[part].keys()) if part in probe else set()
        require(have == set(expected[part].keys()), f"probe.{part}",
                f"needs exactly the options {sorted(expected[part].keys())} (build the section "
                f"with kareljax.probe.options.probe_section), got {sorted(have)}")
    collect_options(probe)
    scan_options(probe)


def collect_options(probe: ml_collections.ConfigDict, **run_time):
    """The CollectOptions of a probe section plus the run-time choices (steps, splits, limit,
    forced, overwrite)."""
    from kareljax.probe import collect_run
    values = {**probe.collect.to_dict(), **run_time}
    for name in ("train_limit", "batch_size"):
        require(isinstance(values[name], int) and values[name] >= 1, f"probe.collect.{name}",
                f"must be an integer >= 1, got {values[name]!r}")
    collect_run.parse_alts(str(values["alts"]), "probe.collect.alts")
    return collect_run.CollectOptions(**values)


def scan_options(probe: ml_collections.ConfigDict):
    """The ScanOptions of a probe section; ConfigError naming the option the scan refuses."""
    from kareljax.probe import fit, scan
    values = probe.scan.to_dict()
    values["alts"] = tuple(values["alts"]) or None
    for key in ("depths", "tasks", "offsets", "statements"):
        values[key] = tuple(values[key])
    require(len(values["offsets"]) >= 1, "probe.scan.offsets",
            f"a tuple of integers like (-1, 0), got {values['offsets']!r}")
    try:
        values["fit"] = fit.FitOptions(**values["fit"])
        return scan.ScanOptions(**values)
    except (ValueError, TypeError) as e:     # the options' own checks name the option
        raise ConfigError(f"probe.scan.{e}") from e


def config_scan_options(config: ml_collections.ConfigDict, profile: str | None = None):
    """The ScanOptions a config's run is scanned with (`profile` given: its sizes instead)."""
    return scan_options(with_overrides(config, [], profile).probe)


def run_probe(workdir: str, overrides=(), profile: str | None = None
              ) -> ml_collections.ConfigDict:
    """The probe section of the run in `workdir` (its config.json), with `profile`'s scan sizes
    and `overrides` ("probe.scan.seeds=5", ...) applied."""
    from kareljax.train import load
    return with_overrides(load.run_config(workdir), list(overrides), profile).probe


def scan_overrides(argv_overrides: list[str]) -> list[str]:
    """`kareljax scan`'s overrides with the short form of earlier versions (`fit.steps=100`,
    `seeds=5`) read as `probe.scan.fit.steps=100`, `probe.scan.seeds=5`."""
    return [o if o.startswith("probe.") else f"probe.scan.{o}" for o in argv_overrides]
