// bench_ort.js — ONNX Runtime (onnxruntime-node, CPU) on the exported reference CLIP towers.
// usage: node bench_ort.js ONNX_DIR THREADS   -> one JSON line per configuration
const ort = require("onnxruntime-node");
const path = require("path");

async function timed(session, feeds, repeats) {
  await session.run(feeds);
  await session.run(feeds);
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function rss() {
  return process.resourceUsage().maxRSS / 1024;
}

async function main() {
  const [dir, threadsArg] = process.argv.slice(2);
  const threads = parseInt(threadsArg, 10);
  const options = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: "all" };
  const vision = await ort.InferenceSession.create(path.join(dir, "vision.onnx"), options);
  for (const batch of [1, 8, 32]) {
    const size = 224;
    const data = Float32Array.from({ length: batch * 3 * size * size }, () => Math.random() * 2 - 1);
    const feeds = { pixels: new ort.Tensor("float32", data, [batch, 3, size, size]) };
    const s = await timed(vision, feeds, batch === 32 ? 3 : 10);
    console.log(JSON.stringify({ peer: "onnxruntime", tower: "image", batch, tokens: 0, ms_per_batch: 1e3 * s,
                                 items_per_s: batch / s, peak_rss_mb: rss() }));
  }
  const text = await ort.InferenceSession.create(path.join(dir, "text.onnx"), options);
  for (const batch of [1, 32]) {
    const ctx = 77;
    const ids = BigInt64Array.from({ length: batch * ctx }, () => BigInt(Math.floor(Math.random() * 49000)));
    const eot = BigInt64Array.from({ length: batch }, () => 11n);
    const feeds = { ids: new ort.Tensor("int64", ids, [batch, ctx]), eot: new ort.Tensor("int64", eot, [batch]) };
    const s = await timed(text, feeds, 5);
    console.log(JSON.stringify({ peer: "onnxruntime", tower: "text", batch, tokens: ctx, ms_per_batch: 1e3 * s,
                                 items_per_s: batch / s, peak_rss_mb: rss() }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
