"""The Typer front end: one module per command group, plus rendering and console plumbing."""
