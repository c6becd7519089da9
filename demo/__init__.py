"""`make demo`: the service, simulated phones and one full cycle on the embedded default."""
