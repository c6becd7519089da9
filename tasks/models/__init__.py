"""Model presets, tiny test models and loading (base, 4-bit, adapters)."""
