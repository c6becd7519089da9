"""Web chat: OpenAI-compatible routes, the llama.cpp worker manager, live token uncertainty."""
