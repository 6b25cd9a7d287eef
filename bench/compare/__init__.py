"""`python -m bench compare RUN_A RUN_B`: what changed between two runs, record by record, from results.json alone."""
