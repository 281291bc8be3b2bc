"""Where snapshots come from: NVML and the OS, Ray, Ollama, the demo node, recordings."""
