"""Loading experiment configs: `configs/<name>.py` files (or their names) plus `--config.x=y`
overrides, in the manner of ml_collections' config flags but for argparse.

A config file defines `get_config()` returning a ConfigDict. Overrides keep the field's type (an int
field takes `--config.data.seed=3`; tuples are written `(6,7)` or `6,7`); unknown fields and values
of the wrong type raise ConfigError naming them.
"""
from __future__ import annotations

import ast
import importlib.util
import pathlib
from typing import Sequence

import ml_collections

from kareljax.errors import KareljaxError

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"


class ConfigError(KareljaxError, ValueError):
    """A config value that cannot work; the message starts with the option's name."""


def require(ok: bool, option: str, message: str) -> None:
    """ConfigError "<option>: <message>" unless `ok`."""
    if not ok:
        raise ConfigError(f"{option}: {message}")


def known_presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py"))


def resolve(spec: str) -> pathlib.Path:
    """The file of a config given as a path or as a name in configs/."""
    path = pathlib.Path(spec)
    if path.is_file():
        return path
    named = CONFIG_DIR / f"{spec}.py"
    if path.suffix != ".py" and named.is_file():
        return named
    raise ConfigError(f"--config: no config file or preset named {spec!r}; the presets are "
                      f"{', '.join(known_presets())} (files in {CONFIG_DIR})")


def load_module(spec: str):
    """The module of config file or preset `spec`, for a config built from another one's
    parametrised `get_config` (configs/small_6x6.py calls small.py's)."""
    path = resolve(spec)
    module_spec = importlib.util.spec_from_file_location(f"kareljax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"--config: {path} defines no get_config()")
    return module


def _parse_value(text: str, current):
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, tuple):
        if isinstance(value, (int, float, str)) and text.strip():
            value = (value,)
        if isinstance(value, list):
            value = tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, str) and not isinstance(value, str):
        value = text
    return value


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
    """Applies one `path=value` (path relative to the config, e.g. `data.seed=3`)."""
    path, sep, text = item.partition("=")
    if not sep:
        raise ConfigError(f"--config.{item}: expected --config.PATH=VALUE")
    *parents, leaf = path.split(".")
    node = config
    for i, key in enumerate(parents):
        if key not in node or not isinstance(node[key], ml_collections.ConfigDict):
            raise ConfigError(f"--config.{path}: {'.'.join(parents[:i + 1])} is not a config "
                              "section")
        node = node[key]
    if leaf not in node:
        raise ConfigError(f"--config.{path}: unknown option; {'.'.join(parents) or 'config'} has "
                          f"{', '.join(sorted(node.keys()))}")
    current = node[leaf]
    value = _parse_value(text, current)
    if isinstance(current, tuple) and not isinstance(value, tuple):
        raise ConfigError(f"--config.{path}: expected a tuple like (1,2), got {text!r}")
    try:
        node[leaf] = value
    except TypeError as e:
        raise ConfigError(f"--config.{path}: {text!r} does not fit the option's type "
                          f"({type(current).__name__})") from e


def load(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The config of file or preset `spec` with `overrides` ("data.seed=3", ...) applied."""
    config = load_module(spec).get_config()
    for item in overrides:
        apply_override(config, item)
    return config


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(other arguments, overrides) of a command line: `--config.a.b=v` or `--config.a.b v`."""
    rest, overrides, i = [], [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--config."):
            body = arg[len("--config."):]
            if "=" not in body:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{arg}: no value given")
                body, i = f"{body}={argv[i + 1]}", i + 1
            overrides.append(body)
        else:
            rest.append(arg)
        i += 1
    return rest, overrides
