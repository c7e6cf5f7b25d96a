#!/usr/bin/env bash
# Prepares, on the CPU machine, what benchmarks/gpu_session.sh needs on a lent GPU machine (issue #17), in .gpu/
# (ignored by git; it travels with `carry: [".gpu"]`). The GPU image has Python 3.12, PyTorch, Triton, accelerate,
# safetensors, tokenizers, PyYAML, tqdm and matplotlib, and nothing can be downloaded there, so this fetches
# pure-Python / manylinux wheels of what it lacks or holds in another version, and copies the bundled tokenizer
# (the tiny test models use it; the SmolLM2 weights themselves, 98 MB as GGUF, are over the 64 MiB a call carries).
# About 60 MB in all. Run:  bash benchmarks/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .git/info
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/whl .gpu/cache/smollm2-135m-instruct
# regex: transformers 5.23 refuses to import with a regex older than 2025.10.22, and the image's version is not known
for package in transformers==5.23.0 peft==0.21.2 gguf==0.19.0 liger-kernel==0.8.5 bitsandbytes==0.50.2 regex==2026.12.2; do
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform any -d .gpu/whl "$package"
done
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" -c "from loralab.models.bundled import load_bundled_tokenizer; load_bundled_tokenizer()"  # fills the cache
cp -r "$("$PY" -c "from loralab.models.bundled import bundled_tokenizer_dir; print(bundled_tokenizer_dir())")" \
    .gpu/cache/smollm2-135m-instruct/tokenizer
du -sh .gpu
