"""The commands of `distillery`, one module per command or group; cli/main.py declares them."""
