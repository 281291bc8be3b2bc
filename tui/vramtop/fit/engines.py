"""The serving engines the fit engine models, by the names a candidate, the what-if form and the
command line give them. A module of their own so that the form, plain data, can name them without
importing the engine."""

VLLM, OLLAMA = "vllm", "ollama"
