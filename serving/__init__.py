"""The phone-facing HTTP service. Imports storage only, never torch/transformers/prefect."""
