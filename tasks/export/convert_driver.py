"""Run llama.cpp's convert_hf_to_gguf.py with one fallback: a pre-tokenizer it has no hash for.

Usage: python convert_driver.py CONVERTER MODEL_DIR [converter options...]

The converter refuses a BPE tokenizer whose output hash it does not know; for those
(`DISTILLERY_PRE_FALLBACK`, named from tokenizer.json's structure by the caller) the
file is written with that name and a `DISTILLERY:` line says so. Known tokenizers keep
the converter's own answer. `DISTILLERY_LICENSE` sets general.license. Runs as its own
process: the converter's gguf-py comes first.
"""

import os
import runpy
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    converter = Path(sys.argv[1]).resolve()
    sys.argv = [str(converter), *sys.argv[2:]]
    sys.path.insert(0, str(converter.parent))
    sys.path.insert(1, str(converter.parent / "gguf-py"))
    from conversion import base  # the sdist's package, found through the path above

    fallback = os.environ.get("DISTILLERY_PRE_FALLBACK", "")
    original = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            if not fallback:
                raise
            print(f"DISTILLERY: pre-tokenizer not known to llama.cpp; wrote {fallback!r}",
                  file=sys.stderr)  # fmt: skip
            return fallback

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre

    # The override file has no general.license key (the converter reads it from the model
    # card only); a student's license is its base model's, so the caller passes it here.
    license_ = os.environ.get("DISTILLERY_LICENSE", "")
    load = base.gguf.Metadata.load

    def load_with_license(*args: Any, **kwargs: Any) -> Any:
        metadata = load(*args, **kwargs)
        if license_:
            metadata.license = license_
        return metadata

    base.gguf.Metadata.load = staticmethod(load_with_license)
    runpy.run_path(str(converter), run_name="__main__")


if __name__ == "__main__":
    main()
