"""kareljax: emergent program semantics in language models, reproduced in JAX."""

__version__ = "0.1.0"
