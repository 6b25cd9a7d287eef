"""Reports built from the records: tables, findings, the ship-this verdict, plots, console and markdown."""
