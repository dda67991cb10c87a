#!/usr/bin/python3
"""gen-cli-doc.py — regenerates docs/CLI.md from `clipc CMD --help` (run from the repo root after
`make`), with the examples below. The test tests/cli/docs_cli.sh checks the two stay in step."""
import subprocess, re
cmds = """embed train eval export info search classify serve shards|index build|index add|index remove|index search|index tune|index info|synth|tokenize|tokenizer-learn|preprocess|version"""
order = []
for part in cmds.split("|"):
    order += [part] if part.startswith("index") else part.split()
examples = {
 "embed": """clipc embed --model clip-vit-base-patch32 --images photos.txt --out photos.npy
clipc embed --model clip-vit-base-patch32 --text "a photo of a dog" "a photo of a cat" --out captions.npy
clipc embed --model clip-vit-base-patch32 --texts long_captions.txt --long-text window --out long.npy""",
 "train": """clipc train --model clip-vit-base-patch32 --data captions_train2017.json --images-root train2017 \\
    --val-data captions_val2017.json --epochs 2 --batch 64 --lr 1e-5 --warmup 500 --out runs/coco
clipc train --arch tiny --data synth/pairs.tsv --out runs/tiny --steps 1000 --eval-every 250
clipc train --model clip-vit-base-patch32 --data pairs.tsv --lock-image --out runs/lit    # LiT
clipc train --model clip-vit-base-patch32 --data pairs.tsv --out runs/coco --resume      # continue
clipc train --model clip-vit-base-patch32 --data pairs.tsv --loss siglip --out runs/siglip   # sigmoid loss
clipc train --model clip-vit-base-patch32 --data pairs.tsv --lora 8 --lora-targets qkv,out --lr 1e-4 \\
    --out runs/lora                                   # LoRA: adapters in runs/lora/lora, merged into runs/lora/model
clipc train --model clip-vit-base-patch32 --data pairs.tsv --zeroshot-data val_labels.tsv --templates templates.txt \\
    --out runs/zs                                     # + zero-shot top-1/top-5 at each evaluation
mpirun -np 4 clipc train --model clip-vit-base-patch32 --data pairs.tsv --batch 256 --threads 4 \\
    --out runs/dp                                     # data-parallel: 4 ranks of 64 (docs/DISTRIBUTED.md)""",
 "eval": """clipc eval --model runs/coco/model --data dataset_coco.json --split test --images-root coco
clipc eval --model runs/coco/model --zeroshot-data imagenet_val.tsv --templates templates.txt""",
 "export": """clipc export --checkpoint runs/coco/checkpoints/step_0002000.safetensors --out coco-clip --dtype bf16
clipc export --model clip-vit-base-patch32 --format onnx --out clip-onnx    # vision.onnx + text.onnx""",
 "info": """clipc info --model clip-vit-base-patch32""",
 "search": """clipc search --index photos.idx --text "a dog on a beach" --k 5
clipc search --index photos.idx --image query.jpg --json
clipc search --index news.idx --text "election results" --decay 0.1 --template "a photo of {}" 
clipc search --index photos.manifest --text "a dog on a beach"   # sharded: every shard, top k merged""",
 "classify": """clipc classify --model clip-vit-base-patch32 --labels labels.txt --image cat.jpg dog.jpg
clipc classify --model clip-vit-base-patch32 --labels labels.txt --images unlabelled.txt --pseudo-label pseudo.tsv""",
 "shards": """clipc shards --data captions_train2017.json --images-root train2017 --out coco-shards""",
 "serve": """clipc serve --index photos.idx --port 8080        # then open http://127.0.0.1:8080/""",
 "index build": """clipc index build --model clip-vit-base-patch32 --images ~/Pictures --type HNSW32 --out photos.idx
clipc index build --model clip-vit-base-patch32 --texts captions.txt --out captions.idx
clipc index build --type IVF1024,PQ64,RFlat --vectors emb.npy --out big.idx
clipc index build --type HNSW32 --vectors emb.npy --shards 4 --out big.manifest   # 4 shards + manifest""",
 "index add": """clipc index add --index photos.idx --images ~/Pictures/2026""",
 "index remove": """clipc index remove --index photos.idx --ids gone.npy""",
 "index search": """clipc index search --index big.idx --queries q.npy --k 10 --out ids.npy --gt gt.npy --nprobe 32""",
 "index tune": """clipc index tune --index big.idx --queries q.npy --target-recall 0.95""",
 "index info": """clipc index info photos.idx
clipc index info big.manifest    # type, dim, metric, model, then one line per shard""",
 "synth": """clipc synth --out synth --count 4000 --seed 7""",
 "tokenize": """echo "a photo of a dog" | clipc tokenize --model clip-vit-base-patch32 --special""",
 "tokenizer-learn": """clipc tokenizer-learn --data synth/pairs.tsv --merges 2000 --out vocab""",
 "preprocess": """clipc preprocess --image cat.jpg --model clip-vit-base-patch32 --out cat.npy""",
 "version": "clipc version",
}
out = ["# clipc command line", "",
"`clipc COMMAND [options]`. Every command takes `--threads N` (default: all cores), `--quiet` (no progress",
"line, only the final summary) and `--help` (the options below, generated from the same table as the parser).",
"Long jobs (embed, train, index build) draw a progress line with rate and ETA when stdout and stderr are a",
"terminal. Exit status: 0 success, 1 runtime error (the message names the file or value at fault), 2 usage",
"error, 130 interrupted training (a checkpoint was saved).", "",
"Image files may be JPEG, PNG, WebP, GIF, BMP or TIFF (the format comes from the content, not the name).",
"`--style openai|hf`, on every command that embeds images, picks the preprocessing pipeline to match: `openai`",
"(the default) is openai/CLIP's `clip.load` transform (resize in the image's own mode, then RGB), `hf` is",
"transformers' `CLIPProcessor` / `CLIPImageProcessor` (RGB first, then resize); they differ on palette, 1-bit,",
"alpha and 16-bit images (docs/DATA.md). An index built with `--model` remembers its style; `search`, `serve`",
"and `index add` use it.", "",
"| command | what it does |", "|---|---|"]
notes = {"index build": """Index types (`--type`, faiss factory spelling; `index/index.h` has the full list):

| type | stores | search |
|---|---|---|
| `Flat` | float32 vectors | exact scan (GEMM for batches) |
| `SQ8` (or `Flat,SQ8`) | one byte per dimension, per-dimension min/max learnt from the training vectors | scan on the codes |
| `F16`, `BF16` (or `Flat,F16`, `Flat,BF16`) | two bytes per dimension (half / bfloat16) | scan on the codes |
| `...,RFlat` after `SQ8`/`F16`/`BF16`/`PQ<M>` | the codes and the float32 vectors | the best k·rerank code candidates re-scored exactly (`--rerank`) |
| `IVF<n>,Flat`, `IVF<n>,PQ<M>[,RFlat]`, `PQ<M>[,RFlat]` | inverted lists / PQ codes | `--nprobe` lists |
| `HNSW<M>` | float32 vectors and a graph | `--ef-search` |
| `PQ<M>x4fs`, `IVF<n>,PQ<M>x4fs` (each `[,RFlat]`) | 4-bit fast-scan PQ codes, M/2 bytes per vector (M even, dividing the dimension), packed in blocks of 32 | exhaustive, or `--nprobe` lists of residual codes; u8 look-up tables summed with vpshufb (AVX2 / AVX-512BW); `,RFlat` re-ranks k·rerank exactly |

(Scalar codes for HNSW, `HNSW32,SQ8`, are not yet implemented.)

Sharded indexes (`--shards N`, with `--vectors` or `--model`): N index files `OUT.shard0` ...
`OUT.shard<N-1>` of the same type, and at `OUT` a small JSON manifest naming them (relative to the
manifest's folder) with their item counts, type, model, dimension and metric (docs/FORMATS.md). The
item with id i is in shard `i % N` (with automatic ids 0, 1, 2, ... the shards get every N-th row);
each shard is trained on its own rows (IVF/PQ: every shard needs enough vectors; `--train-size` does
not apply). Every command that takes `--index` (and `index info`) recognises a manifest by its content:

- `clipc search`, `clipc index search`: every shard is searched with the same parameters and the k best
  are merged (equal scores: smaller id first). For Flat this returns exactly what one unsharded Flat
  index returns; HNSW/IVF shards each search their own graph / lists. `clipc search` takes the model,
  preprocessing and text settings from shard 0's metadata (all shards carry the same).
- `clipc index add --vectors` and `clipc index remove`: each id goes to shard `id % N`; automatic ids
  continue after the largest id of any shard. The changed shards are written under fresh names
  (`OUT.shard<s>` and `OUT.shard<s>.alt` alternate), then the manifest is replaced atomically with the
  new names and counts, then the replaced files are deleted: an error or crash before the manifest is
  renamed leaves the old manifest and every file it names as they were. `--out` and the `--images` /
  `--texts` (model) forms of `index add` do not take a manifest.
- `clipc index build --shards` over an existing manifest at `OUT` writes fresh files the same way and
  deletes the old manifest's shards afterwards; a failed build leaves them untouched.
- `clipc index info MANIFEST` prints the manifest's fields and one line per shard (file, count, memory).
- `clipc index tune` and `clipc serve` take one index file: given a manifest they stop with an error
  that says so. Everything runs in one process, shards one after the other (each search uses all
  threads); fanning shards out over processes or machines (MPI) is not part of this version.

A manifest that is not valid JSON, lacks a field, names a shard file that is missing, escapes its
folder (absolute path or `..`), names a file twice, or whose shard has another type, dimension, metric
or item count than it says is refused with an error naming the manifest, the shard and what differs
(exit status 1).""",
 "shards": """Each pair becomes one sample: keys `000000000`, `000000001`, ... in dataset order, the image member
`KEY.jpg` / `.jpeg` / `.png` / `.webp` (the image file's extension, lower-cased; other image types are
an error naming the file) holding the file's bytes unchanged, and `KEY.txt` holding the caption. An
image with several captions is stored once per caption. Each shard is written to a temporary file and
renamed (atomic); plain ustar headers, readable by GNU tar, Python's `tarfile` and `webdataset`. The
brace pattern to train on is printed on stdout:

```sh
clipc shards --data pairs.tsv --out shards --per-shard 10000
# --data 'shards/{00000..00041}.tar'
clipc train --arch tiny --data 'shards/{00000..00041}.tar' --out run --steps 1000
```

**Reading shards** (`clipc train`, `clipc eval`, `clipc tokenizer-learn`, `clipc shards`: every
`--data` read as a dataset). A `--data` value whose comma-separated items all end in `.tar` is a shard
spec; each item may hold brace ranges `{000..099}` (zero padded when either end has a leading zero, as
open_clip's braceexpand) and brace lists `{a,b}`. Members are grouped into samples by key — the member
name up to the first dot of its last path component, consecutive members only, as WebDataset does —
and a sample is an image (`.jpg`, `.jpeg`, `.png`, `.webp`) plus a caption (`.txt`, else `.json`
with a string `"caption"` or `"text"`). Samples missing either, or whose caption cannot be read, are
skipped and reported once at the end of reading (`warning: N samples skipped in FILE: reason`). A shard
that is missing or does not start with a valid tar header is an error naming it; a bad header later in
a shard ends that shard with a warning, keeping the samples before it.

Samples are read **by offset** (random access), not as a sequential stream: at open, each shard's
headers are indexed (bodies seeked past, only captions read), and the loader threads read each image's
bytes from its shard at its offset. Shuffling, the validation split by image, `--every-caption` and
resuming work exactly as for image files, and pairs.tsv and its shards train to identical losses;
there is no shuffle buffer. The shards must stay unchanged during training. The run's `val.tsv` names
shard images as `/abs/path/00000.tar@OFFSET+SIZE/MEMBER` references, which `clipc eval --data` reads."""}  # text after a command's example
helps = {}
def esc(s): return s.replace("|", "\\|")
for c in order:
    h = subprocess.run(["build/clipc"] + c.split() + ["--help"], capture_output=True, text=True).stdout
    helps[c] = h
    summary = h.split("\n\n")[1].strip().replace("\n", " ")
    out.append(f"| [`{c}`](#clipc-{c.replace(' ', '-')}) | {summary} |")
out.append("")
for c in order:
    h = helps[c]
    lines = h.splitlines()
    usage = [l for l in lines if l.startswith("usage:") or l.startswith("       clipc")]
    summary = h.split("\n\n")[1].strip()
    out += [f"## clipc {c}", "", "```", *[u.replace("usage: ", "") .strip() for u in usage], "```", "", summary, ""]
    opts = []
    for l in lines[lines.index("options:") + 1:] if "options:" in lines else []:
        m = re.match(r"  (--\S+(?: \S.*?)?)\s{2,}(.*)", l)
        if m:
            opts.append((m.group(1), m.group(2)))
    if opts:
        out += ["| option | meaning |", "|---|---|"] + [f"| `{o}` | {esc(d)} |" for o, d in opts] + [""]
    out += ["Example:", "", "```sh", examples[c], "```", ""]
    if c in notes: out += [notes[c], ""]
open("docs/CLI.md", "w").write("\n".join(out))
