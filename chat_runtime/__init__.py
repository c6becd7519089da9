"""The chat runtime: llama.cpp on one GGUF file in its own process (serving never imports it)."""
