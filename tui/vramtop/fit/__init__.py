"""The fit engine: will a model, with a config, fit on these GPUs now? Pure, no Textual."""
