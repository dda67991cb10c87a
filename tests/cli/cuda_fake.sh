#!/bin/sh
# cuda_fake.sh — the CUDA backend and all its kernels on the host emulator (tests/gpu/fake): every
# op, transformer blocks, AdamW, CUDA-graph replay, bf16 paths and bad input, compared with the
# CPU backend (tests/gpu/check_ops.c). Release build: everything; ASan+UBSan build: f32 and the
# bf16 attention kernels (out-of-bounds accesses of any kernel show up there); the ViT tower.
set -e
src=${CLIPC_SRC:-$(pwd)}
release=$src/build/tests/gpu/check_ops_fake
asan=$src/build-asan/tests/gpu/check_ops_fake
[ -x "$release" ] || { echo "missing $release (make test-unit builds it)"; exit 1; }
"$release" --quick
if [ -x "$asan" ]; then
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" "$asan" --quick --precision f32
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" "$asan" --quick --precision bf16 --filter attention
fi
# a small CLIP ViT tower on the engine: CUDA (emulated) vs CPU embeddings and training losses, and
# the PyTorch float64 reference (benchmarks/cuda/vit_torch.py) on the same weights and images
vit=$src/build/tests/gpu/vit_check_fake
[ -x "$vit" ] || { echo "missing $vit"; exit 1; }
"$vit" parity "$TMPDIR/vit" --config tiny --batch 3
"$vit" train --config tiny --batch 4 --steps 3
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    /usr/bin/python3 "$src/benchmarks/cuda/vit_torch.py" parity "$TMPDIR/vit"
else
    echo "python3 with torch not available: PyTorch parity of the ViT tower skipped"
fi
