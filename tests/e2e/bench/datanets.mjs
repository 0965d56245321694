// Benchmark of the datanet file RPC on a two-validator `local` network:
//   - upload throughput through Alice's RPC, with polkadot.js over WebSocket
//     (what an app sees) and as a plain JSON-RPC POST (what the node costs),
//   - download throughput from Alice, who stores the file,
//   - time for a file uploaded through Alice to become downloadable through
//     Bob (his first download fetches it from Alice over the network),
//   - download throughput from Bob once he holds a copy.
// Prints one table row per file size; MB/s counts file bytes (10^6), not the
// hex on the wire, which is twice as large.
//
//   npm run bench:datanets                  # sizes 64 KiB, 1 MiB, 5 MiB; 5 runs each
//   BENCH_RUNS=10 npm run bench:datanets

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { u8aToHex } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';

import { datanetsRpc } from '../datanets-rpc.mjs';
import { startLocalNetwork } from '../test/helpers.mjs';

const RUNS = Number(process.env.BENCH_RUNS) || 5;
const SIZES = [64 * 1024, 1024 * 1024, 5 * 1024 * 1024];

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const mbPerS = (bytes, ms) => (bytes / 1e6) / (ms / 1e3);

async function timed(fn) {
  const start = performance.now();
  const result = await fn();
  return [performance.now() - start, result];
}

async function waitForPeers(api) {
  while ((await api.rpc.system.health()).peers.toNumber() < 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const { alice, bob } = await startLocalNetwork({ apiOptions: { rpc: datanetsRpc } });
try {
  await waitForPeers(alice.api);
  await waitForPeers(bob.api);
  process.stderr.write(`nodes up; ${RUNS} runs per size\n`);

  const rows = [];
  for (const size of SIZES) {
    const samples = { upload: [], uploadHttp: [], downloadA: [], firstB: [], downloadB: [] };
    for (let run = 0; run < RUNS; run++) {
      const file = new Uint8Array(randomBytes(size));
      const hash = blake2AsHex(file, 256);
      const [upload, stored] = await timed(() => alice.api.rpc.datanets.upload(u8aToHex(file)));
      if (stored.toJSON().hash !== hash) throw new Error('upload returned the wrong hash');
      const other = new Uint8Array(randomBytes(size));
      const [uploadHttp] = await timed(() => alice.rpc('datanets_upload', [u8aToHex(other)], 60_000));
      const [downloadA] = await timed(() => alice.api.rpc.datanets.download(hash));
      const [firstB, fetched] = await timed(() => bob.api.rpc.datanets.download(hash));
      if (blake2AsHex(fetched.toU8a(true), 256) !== hash) throw new Error('Bob returned other bytes');
      const [downloadB] = await timed(() => bob.api.rpc.datanets.download(hash));
      samples.upload.push(upload);
      samples.uploadHttp.push(uploadHttp);
      samples.downloadA.push(downloadA);
      samples.firstB.push(firstB);
      samples.downloadB.push(downloadB);
      process.stderr.write(`  ${(size / 1024).toFixed(0)} KiB run ${run + 1}/${RUNS}\r`);
    }
    rows.push({
      'file': size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`,
      'upload MB/s': mbPerS(size, median(samples.upload)).toFixed(1),
      'upload, HTTP MB/s': mbPerS(size, median(samples.uploadHttp)).toFixed(1),
      'download from A MB/s': mbPerS(size, median(samples.downloadA)).toFixed(1),
      'available on B (ms)': median(samples.firstB).toFixed(0),
      'first download via B MB/s': mbPerS(size, median(samples.firstB)).toFixed(1),
      'download from B MB/s': mbPerS(size, median(samples.downloadB)).toFixed(1),
    });
  }
  process.stderr.write('\n');
  console.log(`datanet file RPC, two local validators on one machine, median of ${RUNS} runs`);
  console.table(rows);
} finally {
  await Promise.all([alice.stop(), bob.stop()]);
}
