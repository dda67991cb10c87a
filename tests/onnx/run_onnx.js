// run_onnx.js — runs one ONNX model in ONNX Runtime (onnxruntime-node) on .npy inputs and writes every
// output as OUT_PREFIX<name>.npy (float32), for tests/cli/onnx_export.sh.
//   node run_onnx.js MODEL.onnx OUT_PREFIX NAME=X.npy [NAME=X.npy ...]
// .npy reading and writing: little-endian float32 / int64, C order, version 1.0 headers.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy file`);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header)) throw new Error(`${path}: unsupported header ${header}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const body = buf.subarray(10 + headerLen);
  const copy = new Uint8Array(body).buffer; // aligned copy
  if (descr[1] === '<f4') return new ort.Tensor('float32', new Float32Array(copy), dims);
  if (descr[1] === '<i8') return new ort.Tensor('int64', new BigInt64Array(copy), dims);
  throw new Error(`${path}: dtype ${descr[1]} (want <f4 or <i8)`);
}

function writeNpy(path, tensor) {
  const data = Float32Array.from(tensor.data);
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${tensor.dims.join(', ')}${tensor.dims.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]));
}

async function main() {
  const [model, prefix, ...pairs] = process.argv.slice(2);
  if (!model || !prefix || !pairs.length) throw new Error('usage: node run_onnx.js MODEL.onnx OUT_PREFIX NAME=X.npy ...');
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
  const feeds = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    feeds[pair.slice(0, at)] = readNpy(pair.slice(at + 1));
  }
  const results = await session.run(feeds);
  for (const name of session.outputNames) {
    writeNpy(`${prefix}${name}.npy`, results[name]);
    console.log(`${name}: [${results[name].dims.join(', ')}]`);
  }
}

main().catch((e) => {
  console.error(`run_onnx.js: ${e.message || e}`);
  process.exit(1);
});
