"""Command line, measurement harness and reports (last stage of the pipeline)."""
