"""torch_step.py — PyTorch side of benchmarks/train: one training step (forward both towers of the
reference CLIP, InfoNCE, backward, AdamW) on the same model directory, batch and caption length.

usage: torch_step.py MODEL_DIR BATCH TOKENS STEPS THREADS   -> one JSON line
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
import clip_ref  # noqa: E402

model_dir, batch, tokens, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
with open(os.path.join(model_dir, "config.json")) as f:
    cfg = json.load(f)
w = {k: torch.tensor(v, requires_grad=True) for k, v in clip_ref.read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
opt = torch.optim.AdamW(list(w.values()), lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
size, ctx, vocab = cfg["vision_config"]["image_size"], cfg["text_config"]["max_position_embeddings"], cfg["text_config"]["vocab_size"]
pixels = torch.randn(batch, 3, size, size)
# the reference pads captions to the context as Hugging Face's processor does
ids = torch.randint(0, vocab - 2, (batch, ctx))
eot = torch.full((batch,), tokens - 1)
ids[:, tokens - 1] = vocab - 1
best = 1e30
for step in range(steps + 1):
    start = time.perf_counter()
    opt.zero_grad()
    loss = clip_ref.infonce(clip_ref.image_features(w, cfg, pixels), clip_ref.text_features(w, cfg, ids, eot), w["logit_scale"], 0.0)
    loss.backward()
    opt.step()
    t = time.perf_counter() - start
    if step > 0:
        best = min(best, t)
print(json.dumps({"peer": "pytorch", "batch": batch, "tokens": ctx, "threads": threads, "s_per_step": best,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
