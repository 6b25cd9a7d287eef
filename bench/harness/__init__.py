"""The measurement harness: presets, the child process, latency and memory trackers, the measure stage."""
