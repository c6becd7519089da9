"""Users' data under their control: erasure through files and caches, retention."""
