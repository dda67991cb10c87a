"""clip_ref.py — an independent PyTorch implementation of Hugging Face's CLIPModel architecture,
written from its description, used as the reference for clipc's model.

usage:
  clip_ref.py make OUT_DIR SEED [--arch small|b32] [--n-images N] [--n-texts N] [--dtypes f32,bf16]
      writes OUT_DIR/model_<dtype>/ (config.json + model.safetensors in HF layout, random weights),
      OUT_DIR/pixels.npy [N,3,S,S], OUT_DIR/ids.npy [N,77] int64, OUT_DIR/eot.npy [N] int64, and per
      dtype OUT_DIR/<dtype>_image_embeds.npy, <dtype>_text_embeds.npy (L2-normalised) and
      <dtype>_logits.npy (exp(logit_scale) * image · textᵀ), computed in float64 from the weights
      as stored (so the bf16 reference uses the bf16-rounded weights).
  clip_ref.py train MODEL_DIR PIXELS.npy IDS.npy EOT.npy OUT_DIR STEPS MODAL_REG [--loss clip|siglip]
      AdamW (lr 1e-3, betas (0.9, 0.98), eps 1e-6, weight decay 0.2 on matrices except embeddings,
      3 warmup steps then cosine to STEPS, gradient-norm clipping at 1.0, logit_scale clamped to
      ln 100) on the one batch, in float64; writes OUT_DIR/losses.npy and OUT_DIR/grad_<name>.npy
      (gradients of the first step). --loss siglip: the SigLIP loss (sigmoid over all pairs) with
      logit_scale reset to log 10 and a new logit_bias = -10 (the paper's initialisation), both
      trained without weight decay.
  clip_ref.py lora-grad MODEL_DIR PIXELS.npy IDS.npy EOT.npy OUT_DIR RANK ALPHA TARGETS TOWERS SEED
      random LoRA pairs (PEFT names, B non-zero) in OUT_DIR/lora.safetensors; the InfoNCE loss and
      the pairs' gradients in float64 (see lora_grad)
  clip_ref.py embed MODEL_DIR PIXELS.npy IDS.npy EOT.npy OUT_PREFIX
  clip_ref.py embed-files MODEL_DIR VOCAB_GZ IMAGES_LIST TEXTS_FILE OUT_PREFIX
      end to end: images preprocessed as openai's _transform does with PIL (tests/reference/
      data_image_ref.py), captions tokenized by the Python SimpleTokenizer (truncated to the context
      with the end token kept); writes OUT_PREFIX_image_embeds.npy and OUT_PREFIX_text_embeds.npy
      loads a model directory (f32/f16/bf16 safetensors) and writes OUT_PREFIX_image_embeds.npy etc.

Vision: conv patch embedding (no bias) -> prepend class embedding -> + position embedding ->
pre_layrnorm -> pre-LN encoder layers -> post_layernorm on the class token -> visual_projection.
Text: token + position embedding -> causal pre-LN layers -> final_layer_norm -> row of the first
end-of-text token -> text_projection. Attention scale head_dim^-0.5.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SMALL = {
    "text_config": {"vocab_size": 49408, "hidden_size": 36, "intermediate_size": 60, "num_hidden_layers": 2,
                    "num_attention_heads": 3, "max_position_embeddings": 77, "hidden_act": "gelu",
                    "layer_norm_eps": 1e-5, "eos_token_id": 49407},
    "vision_config": {"hidden_size": 40, "intermediate_size": 72, "num_hidden_layers": 2, "num_attention_heads": 5,
                      "image_size": 36, "patch_size": 6, "num_channels": 3, "hidden_act": "quick_gelu",
                      "layer_norm_eps": 1e-5},
    "projection_dim": 24, "logit_scale_init_value": 2.6592,
}
B32 = {
    "text_config": {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                    "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                    "layer_norm_eps": 1e-5, "eos_token_id": 49407},
    "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                      "num_attention_heads": 12, "image_size": 224, "patch_size": 32, "num_channels": 3,
                      "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
    "projection_dim": 512, "logit_scale_init_value": 2.6592,
}


def param_shapes(cfg):
    t, v, p = cfg["text_config"], cfg["vision_config"], cfg["projection_dim"]
    shapes = {}

    def layers(prefix, c, f, n):
        for i in range(n):
            base = f"{prefix}.encoder.layers.{i}"
            for ln in ("layer_norm1", "layer_norm2"):
                shapes[f"{base}.{ln}.weight"] = (c,)
                shapes[f"{base}.{ln}.bias"] = (c,)
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[f"{base}.self_attn.{proj}.weight"] = (c, c)
                shapes[f"{base}.self_attn.{proj}.bias"] = (c,)
            shapes[f"{base}.mlp.fc1.weight"] = (f, c)
            shapes[f"{base}.mlp.fc1.bias"] = (f,)
            shapes[f"{base}.mlp.fc2.weight"] = (c, f)
            shapes[f"{base}.mlp.fc2.bias"] = (c,)

    ct, cv = t["hidden_size"], v["hidden_size"]
    shapes["text_model.embeddings.token_embedding.weight"] = (t["vocab_size"], ct)
    shapes["text_model.embeddings.position_embedding.weight"] = (t["max_position_embeddings"], ct)
    layers("text_model", ct, t["intermediate_size"], t["num_hidden_layers"])
    shapes["text_model.final_layer_norm.weight"] = (ct,)
    shapes["text_model.final_layer_norm.bias"] = (ct,)
    n_pos = (v["image_size"] // v["patch_size"]) ** 2 + 1
    shapes["vision_model.embeddings.class_embedding"] = (cv,)
    shapes["vision_model.embeddings.patch_embedding.weight"] = (cv, v["num_channels"], v["patch_size"], v["patch_size"])
    shapes["vision_model.embeddings.position_embedding.weight"] = (n_pos, cv)
    shapes["vision_model.pre_layrnorm.weight"] = (cv,)
    shapes["vision_model.pre_layrnorm.bias"] = (cv,)
    layers("vision_model", cv, v["intermediate_size"], v["num_hidden_layers"])
    shapes["vision_model.post_layernorm.weight"] = (cv,)
    shapes["vision_model.post_layernorm.bias"] = (cv,)
    shapes["visual_projection.weight"] = (p, cv)
    shapes["text_projection.weight"] = (p, ct)
    shapes["logit_scale"] = ()
    return shapes


def random_weights(cfg, rng):
    """Random weights with every parameter non-trivial (gains around 1, biases non-zero)."""
    weights = {}
    for name, shape in param_shapes(cfg).items():
        if name == "logit_scale":
            weights[name] = np.array(cfg["logit_scale_init_value"], dtype=np.float32)
        elif name.endswith("norm1.weight") or name.endswith("norm2.weight") or "norm.weight" in name \
                or "layrnorm.weight" in name:
            weights[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif len(shape) == 1:
            weights[name] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            std = 0.02 if "embedding" in name else fan_in ** -0.5
            weights[name] = (std * rng.standard_normal(shape)).astype(np.float32)
    return weights


def bf16_round(a):
    return torch.tensor(a).to(torch.bfloat16).to(torch.float32).numpy()


def write_safetensors(path, weights, dtype):
    header, blobs, offset = {}, [], 0
    for name in sorted(weights):
        a = weights[name]
        if dtype == "f32":
            raw, code = a.astype("<f4").tobytes(), "F32"
        elif dtype == "f16":
            raw, code = a.astype("<f2").tobytes(), "F16"
        else:
            raw, code = torch.tensor(a).to(torch.bfloat16).view(torch.int16).numpy().tobytes(), "BF16"
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[b:end]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4")
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float32)
        elif e["dtype"] == "BF16":
            a = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float().numpy()
        else:
            continue
        out[name] = a.reshape(e["shape"]).astype(np.float32)
    return out


def act(x, name):
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def encoder(x, w, prefix, tc, causal, lora=None):
    """lora: {module name: (A [R, in], B [out, R], scale)}; a module in it computes
    x @ W.T + b + scale * (x @ A.T) @ B.T (PEFT's LoRA Linear, no dropout)."""
    B, T, _ = x.shape
    C = tc["hidden_size"]  # a Python int (keeps ONNX export static)
    H = tc["num_attention_heads"]
    d = C // H
    eps = tc.get("layer_norm_eps", 1e-5)
    for i in range(tc["num_hidden_layers"]):
        p = lambda n: w[f"{prefix}.encoder.layers.{i}.{n}"]

        def lin(h, module, i=i):
            name = f"{prefix}.encoder.layers.{i}.{module}"
            y = h @ w[name + ".weight"].T + w[name + ".bias"]
            if lora and name in lora:
                A, Bm, scale = lora[name]
                y = y + scale * (h @ A.T) @ Bm.T
            return y
        a = torch.nn.functional.layer_norm(x, (C,), p("layer_norm1.weight"), p("layer_norm1.bias"), eps)
        q = lin(a, "self_attn.q_proj") * d ** -0.5
        k = lin(a, "self_attn.k_proj")
        v = lin(a, "self_attn.v_proj")
        q, k, v = (t.reshape(B, T, H, d).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2)
        if causal:
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + lin(o, "self_attn.out_proj")
        h = torch.nn.functional.layer_norm(x, (C,), p("layer_norm2.weight"), p("layer_norm2.bias"), eps)
        h = act(lin(h, "mlp.fc1"), tc.get("hidden_act", "quick_gelu"))
        x = x + lin(h, "mlp.fc2")
    return x


def image_features(w, cfg, pixels, lora=None):
    vc = cfg["vision_config"]
    eps = vc.get("layer_norm_eps", 1e-5)
    x = torch.nn.functional.conv2d(pixels, w["vision_model.embeddings.patch_embedding.weight"], stride=vc["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + w["vision_model.embeddings.position_embedding.weight"]
    C = vc["hidden_size"]
    x = torch.nn.functional.layer_norm(x, (C,), w["vision_model.pre_layrnorm.weight"], w["vision_model.pre_layrnorm.bias"], eps)
    x = encoder(x, w, "vision_model", vc, False, lora)
    pooled = torch.nn.functional.layer_norm(x[:, 0], (C,), w["vision_model.post_layernorm.weight"],
                                            w["vision_model.post_layernorm.bias"], eps)
    return pooled @ w["visual_projection.weight"].T


def text_features(w, cfg, ids, eot, lora=None):
    tc = cfg["text_config"]
    eps = tc.get("layer_norm_eps", 1e-5)
    T = ids.shape[1]
    x = w["text_model.embeddings.token_embedding.weight"][ids] + w["text_model.embeddings.position_embedding.weight"][:T]
    x = encoder(x, w, "text_model", tc, True, lora)
    C = tc["hidden_size"]
    x = torch.nn.functional.layer_norm(x, (C,), w["text_model.final_layer_norm.weight"],
                                       w["text_model.final_layer_norm.bias"], eps)
    pooled = x[torch.arange(x.shape[0]), eot]
    return pooled @ w["text_projection.weight"].T


def run(weights_np, cfg, pixels, ids, eot, prefix):
    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in weights_np.items()}
    with torch.no_grad():
        img = image_features(w, cfg, torch.tensor(pixels, dtype=torch.float64))
        txt = text_features(w, cfg, torch.tensor(ids), torch.tensor(eot))
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        logits = w["logit_scale"].exp() * img @ txt.T
    np.save(prefix + "_image_embeds.npy", img.numpy().astype(np.float32))
    np.save(prefix + "_text_embeds.npy", txt.numpy().astype(np.float32))
    np.save(prefix + "_logits.npy", logits.numpy().astype(np.float32))


def infonce(img, txt, logit_scale, modal_reg):
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    logits = logit_scale.exp() * img @ txt.T
    labels = torch.arange(img.shape[0])
    loss = 0.5 * (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels))
    if modal_reg > 0:
        gap = img.mean(0) - txt.mean(0)
        loss = loss + modal_reg * (gap * gap).sum()
    return loss


def siglip(img, txt, logit_scale, logit_bias, modal_reg):
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    logits = logit_scale.exp() * img @ txt.T + logit_bias
    signs = 2 * torch.eye(img.shape[0], dtype=logits.dtype) - 1
    loss = -torch.nn.functional.logsigmoid(signs * logits).sum() / img.shape[0]
    if modal_reg > 0:
        gap = img.mean(0) - txt.mean(0)
        loss = loss + modal_reg * (gap * gap).sum()
    return loss


def decays(name, shape):
    return len(shape) >= 2 and "position_embedding" not in name and "token_embedding" not in name


def train(model_dir, pixels, ids, eot, out_dir, steps, modal_reg, loss_kind="clip"):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    if loss_kind == "siglip" and "logit_bias" not in w:
        w["logit_scale"] = torch.tensor(math.log(10), dtype=torch.float64, requires_grad=True)
        w["logit_bias"] = torch.tensor(-10.0, dtype=torch.float64, requires_grad=True)
    groups = [{"params": [t for k, t in w.items() if decays(k, t.shape)], "weight_decay": 0.2},
              {"params": [t for k, t in w.items() if not decays(k, t.shape)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.98), eps=1e-6, foreach=False)
    warmup = 3

    def lr_at(step):
        if step < warmup:
            return 1e-3 * (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup))) * 1e-3

    pixels, ids, eot = torch.tensor(pixels, dtype=torch.float64), torch.tensor(ids), torch.tensor(eot)
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad()
        img, txt = image_features(w, cfg, pixels), text_features(w, cfg, ids, eot)
        if loss_kind == "siglip":
            loss = siglip(img, txt, w["logit_scale"], w["logit_bias"], modal_reg)
        else:
            loss = infonce(img, txt, w["logit_scale"], modal_reg)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            for k, t in w.items():
                np.save(os.path.join(out_dir, f"grad_{k}.npy"), t.grad.numpy().astype(np.float32))
        torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
        opt.step()
        with torch.no_grad():
            w["logit_scale"].clamp_(max=math.log(100))
    np.save(os.path.join(out_dir, "losses.npy"), np.array(losses, dtype=np.float32))


LORA_MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                "out": "self_attn.out_proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def lora_grad(model_dir, pixels, ids, eot, out_dir, rank, alpha, targets, towers, seed):
    """Random LoRA pairs (A as PEFT initialises it, B random and non-zero, so that A gets a
    gradient) on TARGETS (comma-separated keys of LORA_MODULES) of TOWERS (text,vision), written
    to OUT_DIR/lora.safetensors under PEFT's names; then, in float64, the InfoNCE loss of the batch
    (base weights and logit_scale frozen), every pair's gradient (grad_<name>.npy), loss.npy and
    the LoRA model's L2-normalised features (lora_image_embeds.npy, lora_text_embeds.npy)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = {k: torch.tensor(v, dtype=torch.float64)
         for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    rng = np.random.default_rng(seed)
    scale = alpha / rank
    lora, params, saved = {}, {}, {}
    for tower in towers.split(","):
        prefix = {"text": "text_model", "vision": "vision_model"}[tower]
        for i in range(cfg[f"{tower}_config"]["num_hidden_layers"]):
            for t in targets.split(","):
                name = f"{prefix}.encoder.layers.{i}.{LORA_MODULES[t]}"
                out_f, in_f = w[name + ".weight"].shape
                A = rng.uniform(-1, 1, (rank, in_f)) / math.sqrt(in_f)
                Bm = rng.standard_normal((out_f, rank)) * 0.5 / math.sqrt(rank)
                for key, a in (("lora_A", A), ("lora_B", Bm)):
                    peft = f"base_model.model.{name}.{key}.weight"
                    saved[peft] = a.astype(np.float32)
                    params[peft] = torch.tensor(saved[peft], dtype=torch.float64, requires_grad=True)
                lora[name] = (params[f"base_model.model.{name}.lora_A.weight"],
                              params[f"base_model.model.{name}.lora_B.weight"], scale)
    write_safetensors(os.path.join(out_dir, "lora.safetensors"), saved, "f32")
    pixels, ids, eot = torch.tensor(pixels, dtype=torch.float64), torch.tensor(ids), torch.tensor(eot)
    img, txt = image_features(w, cfg, pixels, lora), text_features(w, cfg, ids, eot, lora)
    loss = infonce(img, txt, w["logit_scale"], 0.0)
    loss.backward()
    for k, t in params.items():
        np.save(os.path.join(out_dir, f"grad_{k}.npy"), t.grad.numpy().astype(np.float32))
    np.save(os.path.join(out_dir, "loss.npy"), np.array([loss.item()], dtype=np.float32))
    with torch.no_grad():
        np.save(os.path.join(out_dir, "lora_image_embeds.npy"), (img / img.norm(dim=-1, keepdim=True)).numpy().astype(np.float32))
        np.save(os.path.join(out_dir, "lora_text_embeds.npy"), (txt / txt.norm(dim=-1, keepdim=True)).numpy().astype(np.float32))


def main():
    if sys.argv[1] == "make":
        out, seed = sys.argv[2], int(sys.argv[3])
        opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
        cfg = B32 if opts.get("--arch", "small") == "b32" else SMALL
        n_images, n_texts = int(opts.get("--n-images", 5)), int(opts.get("--n-texts", 7))
        dtypes = opts.get("--dtypes", "f32,bf16").split(",")
        rng = np.random.default_rng(seed)
        weights = random_weights(cfg, rng)
        vc, tc = cfg["vision_config"], cfg["text_config"]
        S = vc["image_size"]
        pixels = rng.standard_normal((n_images, 3, S, S)).astype(np.float32)
        ctx, vocab = tc["max_position_embeddings"], tc["vocab_size"]
        ids = np.zeros((n_texts, ctx), dtype=np.int64)
        eot = rng.integers(1, ctx, size=n_texts)
        eot[0] = ctx - 1  # one caption fills the whole context
        for i in range(n_texts):
            ids[i, 0] = vocab - 2
            ids[i, 1:eot[i]] = rng.integers(0, vocab - 2, size=eot[i] - 1)
            ids[i, eot[i]] = vocab - 1
        np.save(os.path.join(out, "pixels.npy"), pixels)
        np.save(os.path.join(out, "ids.npy"), ids)
        np.save(os.path.join(out, "eot.npy"), eot.astype(np.int64))
        for dtype in dtypes:
            d = os.path.join(out, f"model_{dtype}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(dict(cfg, architectures=["CLIPModel"], model_type="clip"), f, indent=2)
            write_safetensors(os.path.join(d, "model.safetensors"), weights, dtype)
            stored = weights if dtype == "f32" else {k: (bf16_round(v) if dtype == "bf16" else v.astype(np.float16).astype(np.float32)) for k, v in weights.items()}
            run(stored, cfg, pixels, ids, eot, os.path.join(out, dtype))
    elif sys.argv[1] == "train":
        model_dir, pixels, ids, eot, out_dir, steps, modal_reg = sys.argv[2:9]
        opts = dict(zip(sys.argv[9::2], sys.argv[10::2]))
        train(model_dir, np.load(pixels), np.load(ids), np.load(eot), out_dir, int(steps), float(modal_reg),
              opts.get("--loss", "clip"))
    elif sys.argv[1] == "lora-grad":
        model_dir, pixels, ids, eot, out_dir, rank, alpha, targets, towers, seed = sys.argv[2:12]
        lora_grad(model_dir, np.load(pixels), np.load(ids), np.load(eot), out_dir, int(rank), float(alpha), targets,
                  towers, int(seed))
    elif sys.argv[1] == "embed-files":
        model_dir, vocab, images_list, texts_file, prefix = sys.argv[2:7]
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        sys.path.insert(0, os.path.join(here, "..", "..", "benchmarks", "data"))
        import data_image_ref
        from PIL import Image
        from simple_tokenizer_ref import SimpleTokenizer
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        size = cfg["vision_config"]["image_size"]
        ctx = cfg["text_config"]["max_position_embeddings"]
        paths = [l.rstrip("\n") for l in open(images_list) if l.strip()]
        pixels = np.stack([data_image_ref.openai_float(data_image_ref.openai_u8(Image.open(p), size, size)) for p in paths])
        tok = SimpleTokenizer(vocab_gz=vocab)
        sot, eot_id = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
        texts = [l.rstrip("\n") for l in open(texts_file, encoding="utf-8")]
        ids = np.zeros((len(texts), ctx), dtype=np.int64)
        eot = np.zeros(len(texts), dtype=np.int64)
        for i, t in enumerate(texts):
            row = [sot] + tok.encode(t)[:ctx - 2] + [eot_id]
            ids[i, :len(row)] = row
            eot[i] = len(row) - 1
        weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        run(weights, cfg, pixels.astype(np.float32), ids, eot, prefix)
    elif sys.argv[1] == "embed":
        model_dir, pixels, ids, eot, prefix = sys.argv[2:7]
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        run(weights, cfg, np.load(pixels), np.load(ids), np.load(eot), prefix)
    else:
        sys.exit("usage: clip_ref.py make|embed ...")


if __name__ == "__main__":
    main()
