"""The chat model runtime: llama.cpp on one GGUF file, in its own process (never imported by serving)."""
