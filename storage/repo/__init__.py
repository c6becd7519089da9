"""Repository functions: keyword-only `session`, never commit (the caller owns the transaction)."""
