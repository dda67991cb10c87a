"""peers.py — the PyTorch side of benchmarks/model: exports the reference CLIP (tests/reference/
clip_ref.py) to ONNX for ONNX Runtime, and times PyTorch on the same shapes as bench_model.

usage: peers.py export MODEL_DIR OUT_DIR          -> OUT_DIR/vision.onnx, OUT_DIR/text.onnx (77 tokens)
       peers.py torch MODEL_DIR THREADS            -> one JSON line per configuration
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "reference"))
import clip_ref  # noqa: E402


class Tower(torch.nn.Module):
    """One tower of the reference model as an nn.Module (weights as float32 buffers)."""

    def __init__(self, model_dir, which):
        super().__init__()
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        weights = clip_ref.read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.names = []
        for i, (name, value) in enumerate(sorted(weights.items())):
            self.register_buffer(f"w{i}", torch.tensor(value))
            self.names.append(name)
        self.which = which

    def weights(self):
        return {name: getattr(self, f"w{i}") for i, name in enumerate(self.names)}

    def forward(self, x, eot=None):
        w = self.weights()
        if self.which == "vision":
            f = clip_ref.image_features(w, self.cfg, x)
        else:
            f = clip_ref.text_features(w, self.cfg, x, eot)
        return f / f.norm(dim=-1, keepdim=True)


def export(model_dir, out_dir):
    vision = Tower(model_dir, "vision").eval()
    text = Tower(model_dir, "text").eval()
    size = vision.cfg["vision_config"]["image_size"]
    ctx = text.cfg["text_config"]["max_position_embeddings"]
    with torch.no_grad():
        torch.onnx.export(vision, (torch.randn(2, 3, size, size),), os.path.join(out_dir, "vision.onnx"),
                          input_names=["pixels"], output_names=["embeds"],
                          dynamic_axes={"pixels": {0: "batch"}, "embeds": {0: "batch"}}, opset_version=14)
        ids = torch.randint(0, 49000, (2, ctx))
        eot = torch.tensor([ctx - 1, 5])
        torch.onnx.export(text, (ids, eot), os.path.join(out_dir, "text.onnx"), input_names=["ids", "eot"],
                          output_names=["embeds"],
                          dynamic_axes={"ids": {0: "batch"}, "eot": {0: "batch"}, "embeds": {0: "batch"}},
                          opset_version=14)


def timed(fn, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_torch(model_dir, threads):
    torch.set_num_threads(threads)
    vision = Tower(model_dir, "vision").eval()
    text = Tower(model_dir, "text").eval()
    size = vision.cfg["vision_config"]["image_size"]
    ctx = text.cfg["text_config"]["max_position_embeddings"]
    with torch.inference_mode():
        for batch in (1, 8, 32):
            x = torch.randn(batch, 3, size, size)
            s = timed(lambda: vision(x), 3 if batch == 32 else 5)
            print(json.dumps({"peer": "pytorch", "tower": "image", "batch": batch, "tokens": 0, "ms_per_batch": 1e3 * s,
                              "items_per_s": batch / s,
                              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
        for batch in (1, 32):
            # the reference pads every caption to the context, as Hugging Face's processor does
            ids = torch.randint(0, 49000, (batch, ctx))
            eot = torch.full((batch,), 11)
            s = timed(lambda: text(ids, eot), 3)
            print(json.dumps({"peer": "pytorch", "tower": "text", "batch": batch, "tokens": ctx, "ms_per_batch": 1e3 * s,
                              "items_per_s": batch / s,
                              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3])
    else:
        bench_torch(sys.argv[2], int(sys.argv[3]))
