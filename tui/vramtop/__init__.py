"""vramtop: a live monitor of a GPU node that serves LLMs, and whether a new model would fit."""

__version__ = "0.1.0"
