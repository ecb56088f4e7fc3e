"""The `flywheel` command for operators: thin argparse subcommands over the library."""
