"""The delta part of a manifest entry: base, adapter, per-agent adapters and what to fetch.

A version may publish, besides the merged GGUF, its LoRA adapter as a llama.cpp GGUF adapter
and the base GGUF the adapter applies to (the same file, same sha256, for every version on
that base revision). A phone that already holds that base downloads only the adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage.registry.files import role_of
from storage.repo.catalog import Release

FileUrl = Callable[[dict[str, Any], str], str]


def by_role(files: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The entries of `files` with this role (entries without one are 'merged')."""
    return [f for f in files if role_of(f) == role]


def _described(entry: dict[str, Any] | None, base_url: str, url: FileUrl) -> dict[str, Any] | None:
    if entry is None:
        return None
    meta = entry.get("meta") or {}
    out = {
        "name": entry.get("name"),
        "url": url(entry, base_url),
        "size": entry.get("size"),
        "sha256": entry.get("sha256"),
        "quantization": entry.get("quantization"),
        "format": entry.get("format"),
        "role": role_of(entry),
    }
    if role_of(entry) == "adapter":
        # llama.cpp multiplies the adapter by `scale` at run time (1.0 = as trained).
        out["scale"] = float(meta.get("scale", 1.0))
        out["base_sha256"] = meta.get("base_sha256")
        out["lora_rank"] = meta.get("lora_rank")
        out["lora_alpha"] = meta.get("lora_alpha")
    elif role_of(entry) == "base":
        out["revision"] = meta.get("revision")
    return out


def delta_fields(
    files: list[dict[str, Any]], base_url: str, url: FileUrl
) -> dict[str, dict[str, Any] | None]:
    """{"base": ..., "adapter": ...} of a release (None where it published none)."""
    base = by_role(files, "base")
    adapter = by_role(files, "adapter")
    return {
        "base": _described(base[0] if base else None, base_url, url),
        "adapter": _described(adapter[0] if adapter else None, base_url, url),
    }


def agent_entries(
    releases: list[Release], base_url: str, url: FileUrl, base_sha256: str | None
) -> list[dict[str, Any]]:
    """Every agent's adapter release of one student, sorted by agent."""
    out = []
    for release in sorted(releases, key=lambda r: r.agent or ""):
        fields = delta_fields(release.files, base_url, url)
        if fields["adapter"] is None:
            continue  # an agent release phones cannot apply to a base
        merged = by_role(release.files, "merged")
        own_base = fields["base"]["sha256"] if fields["base"] else fields["adapter"]["base_sha256"]
        out.append(
            {
                "agent": release.agent,
                "version": release.version,
                "adapter": fields["adapter"],
                "same_base": base_sha256 is not None and own_base == base_sha256,
                "merged_url": url(merged[0], base_url) if merged else None,
                "released_at": release.published_at,
            }
        )
    return out


def fetch_plan(
    entry: dict[str, Any],
    *,
    current_version: int | None,
    phone_base_sha256: str | None,
) -> dict[str, Any]:
    """What this phone must download: nothing, only the adapter, or the merged file.

    Only the adapter when the phone's base sha256 is the base this version's adapter was
    made for; the merged file for a phone without that base (or a version without adapter).
    """
    full = int(entry.get("size") or 0)
    if current_version is not None and entry["version"] <= current_version:
        return {"kind": "none", "files": [], "bytes": 0, "full_bytes": full}
    adapter, base = entry.get("adapter"), entry.get("base")
    if (
        phone_base_sha256 is not None
        and adapter is not None
        and base is not None
        and base["sha256"] == phone_base_sha256
        and adapter.get("base_sha256") in (None, phone_base_sha256)
    ):
        size = int(adapter.get("size") or 0)
        return {"kind": "adapter", "files": [adapter["name"]], "bytes": size, "full_bytes": full}
    return {"kind": "merged", "files": [entry.get("file_name")], "bytes": full, "full_bytes": full}
