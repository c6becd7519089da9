"""The phone-facing HTTP service. Imports storage only: no torch, transformers, trl, peft or prefect."""
