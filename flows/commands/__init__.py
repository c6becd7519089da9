"""CLI subcommands: each module defines `register(subparsers)`; flows.cli discovers them."""
