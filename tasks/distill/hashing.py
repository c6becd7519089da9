"""The canonical hash of a conversation: the key of the teacher cache and of erasures.

Kept apart from `tasks.distill.data` (datasets, transformers) so the erasure flow can hash
records without loading the training stack.
"""

from __future__ import annotations

import hashlib
import json

Messages = list[dict[str, str]]


def record_hash(messages: Messages) -> str:
    """sha256 of the canonical JSON of the messages (role and content only)."""
    canon = [{"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(
        json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
