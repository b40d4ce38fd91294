"""kareljax: emergent program semantics in language models, reproduced in JAX.

`kareljax.load_run(workdir)` opens a run directory from Python (`kareljax.runs`); importing the
package itself loads nothing heavy (the command line's --help stays fast).
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name in ("load_run", "Run"):
        from kareljax import runs
        return getattr(runs, name)
    raise AttributeError(f"module 'kareljax' has no attribute {name!r}")
