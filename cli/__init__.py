"""The `distillery` command line: one module per command group under cli/commands/."""
