"""The `slamon` command line: one root parser wiring each package's commands (`slamon.cli`)."""
