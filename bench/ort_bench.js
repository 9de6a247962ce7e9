#!/usr/bin/env node
// ort_bench.js: times one ONNX model with ONNX Runtime (onnxruntime-node,
// the CPU execution provider), on THREADS threads (default 1).
//
//   node bench/ort_bench.js MODEL.onnx INPUT.bin OUTPUT.bin WARMUP RUNS BUDGET_SECONDS [THREADS]
//
// Session: intraOpNumThreads=THREADS, interOpNumThreads=1 (one operator at
// a time, each split over THREADS threads), graphOptimizationLevel 'all',
// executionMode 'sequential'.  INPUT.bin is the raw float32 input of
// the model's first input (its shape comes from the model); the first output
// of the last run goes to OUTPUT.bin.  WARMUP untimed runs (at least one;
// fewer once they have taken a quarter of the budget), then up to RUNS
// timed runs (at least 3; stops early once BUDGET_SECONDS of timed runs have
// passed), timed with the monotonic clock (process.hrtime.bigint).  Prints
// one JSON object: {"median_ms", "min_ms", "runs", "warmup", "ort_version",
// "session_ms", "threads"}.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function readF32(file) {
  const buf = fs.readFileSync(file);
  if (buf.length % 4 !== 0) throw new Error(`${file}: size ${buf.length} is not a multiple of 4`);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(4 * i);
  return out;
}

function writeF32(file, data) {
  const buf = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, buf);
}

async function main(argv) {
  if (argv.length !== 6 && argv.length !== 7) {
    console.error('usage: ort_bench.js MODEL.onnx INPUT.bin OUTPUT.bin WARMUP RUNS BUDGET_SECONDS [THREADS]');
    return 2;
  }
  const [modelPath, inPath, outPath] = argv;
  const warmup = parseInt(argv[3], 10), runs = parseInt(argv[4], 10);
  const budgetMs = 1e3 * parseFloat(argv[5]);
  const threads = argv.length === 7 ? Number(argv[6]) : 1;
  if (!(warmup >= 0 && runs >= 1 && budgetMs > 0 && Number.isInteger(threads) && threads >= 1)) {
    console.error('ort_bench.js: bad WARMUP/RUNS/BUDGET/THREADS');
    return 2;
  }
  const t0 = nowMs();
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const sessionMs = nowMs() - t0;
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const data = readF32(inPath);
  let dims = meta && meta.isTensor && meta.shape ? meta.shape : null;
  if (!dims || dims.some((d) => typeof d !== 'number')) dims = [1, 3, 224, 224];
  const numel = dims.reduce((a, b) => a * b, 1);
  if (numel !== data.length) {
    throw new Error(`${inPath}: ${data.length} floats, the model's input ${inName} ` +
                    `[${dims}] needs ${numel}`);
  }
  const feeds = { [inName]: new ort.Tensor('float32', data, dims) };
  let warm = 0, warmSpent = 0;
  while (warm < Math.max(warmup, 1) && !(warm >= 1 && warmSpent >= budgetMs / 4)) {
    const a = nowMs();
    await session.run(feeds);
    warmSpent += nowMs() - a;
    warm++;
  }
  const times = [];
  let spent = 0, result = null;
  while (times.length < runs && !(times.length >= 3 && spent >= budgetMs)) {
    const a = nowMs();
    result = await session.run(feeds);
    const dt = nowMs() - a;
    times.push(dt);
    spent += dt;
  }
  writeF32(outPath, result[outName].data);
  console.log(JSON.stringify({
    median_ms: median(times),
    min_ms: Math.min(...times),
    runs: times.length,
    warmup: warm,
    ort_version: ort.env.versions ? ort.env.versions.node : null,
    session_ms: sessionMs,
    threads,
  }));
  return 0;
}

main(process.argv.slice(2)).then(
  (rc) => { process.exitCode = rc; },
  (err) => { console.error(`ort_bench.js: ${err && err.message ? err.message : err}`); process.exitCode = 1; });
