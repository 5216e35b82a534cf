"""isda-bench: reproduce and extend Implicit Semantic Data Augmentation (ISDA)."""

__version__ = "0.3.0"
