"""app_resize_ref.py — references for engine/clip_resize.c (multi-scale CLIP features).

usage:
  app_resize_ref.py interp IN.npy OUT_H OUT_W OUT.npy
      IN: float32 [H, W, C] grid; writes torch F.interpolate(mode="bicubic", align_corners=False) of it,
      computed in float64, as [OUT_H, OUT_W, C] float32.
  app_resize_ref.py embed MODEL_DIR SIZE PIXELS.npy OUT.npy
      image features (L2-normalised) of PIXELS [N, 3, SIZE, SIZE] with the model's vision position
      embedding interpolated to the SIZE / patch grid (class row kept), as Hugging Face's
      interpolate_pos_encoding does; the model itself is clip_ref.py's.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_ref  # noqa: E402


def interp(grid, out_h, out_w):
    t = torch.tensor(grid, dtype=torch.float64).permute(2, 0, 1).unsqueeze(0)
    r = torch.nn.functional.interpolate(t, size=(out_h, out_w), mode="bicubic", align_corners=False)
    return r[0].permute(1, 2, 0).numpy()


def main():
    if sys.argv[1] == "interp":
        grid = np.load(sys.argv[2])
        out = interp(grid, int(sys.argv[3]), int(sys.argv[4]))
        np.save(sys.argv[5], out.astype(np.float32))
    elif sys.argv[1] == "embed":
        model_dir, size, pixels, out = sys.argv[2], int(sys.argv[3]), np.load(sys.argv[4]), sys.argv[5]
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        w = clip_ref.read_safetensors(os.path.join(model_dir, "model.safetensors"))
        name = "vision_model.embeddings.position_embedding.weight"
        pos = w[name]
        grid = int(round((pos.shape[0] - 1) ** 0.5))
        new_grid = size // cfg["vision_config"]["patch_size"]
        patches = interp(pos[1:].reshape(grid, grid, -1), new_grid, new_grid).reshape(new_grid * new_grid, -1)
        w[name] = np.concatenate([pos[:1], patches]).astype(np.float64)
        cfg["vision_config"]["image_size"] = size
        wt = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
        with torch.no_grad():
            img = clip_ref.image_features(wt, cfg, torch.tensor(pixels, dtype=torch.float64))
            img = img / img.norm(dim=-1, keepdim=True)
        np.save(out, img.numpy().astype(np.float32))
    else:
        sys.exit("usage: app_resize_ref.py interp|embed ...")


if __name__ == "__main__":
    main()
