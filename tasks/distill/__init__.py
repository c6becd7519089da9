"""Distillation: pair preflight, cached teacher signals, LoRA training with a KD loss."""
