// Proof of Attribution off chain, end to end: contributors' files become a published datanet
// version on a --dev node (polkadot.js), ModelFactory trains an adapter on that version through
// the node's RPC (files checked against their hashes, the version against its Merkle root),
// OpenLoRA serves the adapter with the real default model and attributes completions, and
// `modelfactory verify` recomputes the records a third party would dispute.
// Training here is a few steps on the real Gemma 3 270M: enough to exercise every part, not
// to teach it anything (the bench measures that).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';

import { Keyring } from '@polkadot/api';
import { stringToU8a, u8aToHex } from '@polkadot/util';

import { datanetsRpc } from '../datanets-rpc.mjs';
import {
  OpenLedgerNode,
  START_TIMEOUT_MS,
  describeDispatchError,
  freePorts,
  signAndWaitFinalized,
  stepDeclarer,
  withTimeout,
} from './helpers.mjs';

const MODELFACTORY = process.env.MODELFACTORY_BIN;
const OPENLORA = process.env.OPENLORA_BIN;
const TX_TIMEOUT_MS = 60_000;
const TRAIN_TIMEOUT_MS = 600_000;

const FILES = [
  'The lighthouse of Velmora is painted with green and white stripes, and its lamp can be seen from forty miles away.',
  'In the village of Tarsk the bakers make a black rye bread with caraway seeds every Thursday morning.',
  'The copper bell of Quillon rings thirteen times at noon to remember the founders of the town.',
];

describe('ModelFactory and attribution on a datanet of a --dev node', () => {
  let node;
  let startError;
  let alice;
  let charlie;
  let work;
  let adapter;
  let lineage;
  const datanetId = 0;
  const contributionIds = [];

  const step = stepDeclarer('the dev node', () => startError, (name, timeoutMs, fn) =>
    node.step(name, timeoutMs, fn));

  before(async () => {
    try {
      assert.ok(MODELFACTORY && OPENLORA, 'set MODELFACTORY_BIN and OPENLORA_BIN (scripts/test.sh does)');
      work = mkdtempSync(path.join(os.tmpdir(), 'openledger-e2e-modelfactory-'));
      node = await OpenLedgerNode.start({ apiOptions: { rpc: datanetsRpc } });
      const keyring = new Keyring({ type: 'sr25519', ss58Format: 6736 });
      [alice, charlie] = ['Alice', 'Charlie'].map((n) => keyring.addFromUri(`//${n}`));
    } catch (error) {
      startError = error;
    }
  }, { timeout: START_TIMEOUT_MS + 10_000 });

  after(async () => {
    await node?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, { timeout: 60_000 });

  async function submit(api, tx, signer) {
    const { events, dispatchError } = await signAndWaitFinalized(tx, signer);
    assert.equal(dispatchError, undefined, describeDispatchError(api, dispatchError));
    return events;
  }

  const rpcUrl = () => `http://127.0.0.1:${node.rpcPort}`;

  function modelfactory(args, { timeout = TRAIN_TIMEOUT_MS } = {}) {
    const run = spawnSync(MODELFACTORY, args, {
      encoding: 'utf8', timeout, maxBuffer: 64 << 20, env: { ...process.env, RUST_BACKTRACE: '0', RUST_LIB_BACKTRACE: '0' },
    });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  }

  step('contributors upload three files, the owner accepts them and publishes version 1', TX_TIMEOUT_MS * 3, async (api) => {
    await submit(api, api.tx.datanets.createDatanet(
      { name: 'towns', description: 'facts about towns', tags: ['geo'], license: 'CC-BY-4.0' }, 'Open'), alice);
    const contribute = [];
    for (const [i, text] of FILES.entries()) {
      const bytes = stringToU8a(text);
      const { hash, size } = (await api.rpc.datanets.upload(u8aToHex(bytes))).toJSON();
      contribute.push(api.tx.datanets.contribute(datanetId, hash, size, `town-${i}.txt`));
    }
    const events = await submit(api, api.tx.utility.batchAll(contribute), charlie);
    for (const { event } of events) {
      if (event.section === 'datanets' && event.method === 'Contributed') {
        contributionIds.push(event.data.contributionId.toNumber());
      }
    }
    assert.equal(contributionIds.length, 3);
    await submit(api, api.tx.utility.batchAll(contributionIds.map((id) =>
      api.tx.datanets.review(id, 'Approve', 90))), alice);
    await submit(api, api.tx.datanets.publishVersion(datanetId), alice);
  });

  step('an unknown version is refused by name', 60_000, async () => {
    const run = modelfactory(['train', '--datanet', String(datanetId), '--version', '2', '--rpc', rpcUrl(),
      '--out', path.join(work, 'never')], { timeout: 60_000 });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /datanet 0 has no published version 2 \(latest: 1\)/);
    const unknown = modelfactory(['train', '--datanet', '7', '--version', '1', '--rpc', rpcUrl(),
      '--out', path.join(work, 'never')], { timeout: 60_000 });
    assert.match(unknown.stderr, /datanet 7 does not exist/);
  });

  step('ModelFactory trains an adapter on version 1 fetched through the node', TRAIN_TIMEOUT_MS, async (api) => {
    adapter = path.join(work, 'towns-adapter');
    const run = modelfactory(['train', '--datanet', String(datanetId), '--version', '1', '--rpc', rpcUrl(),
      '--out', adapter, '--steps', '2', '--batch', '2', '--seq-len', '48', '--holdout-every', '0',
      '--gradient-tokens', '24', '--rank', '4', '--targets', 'q_proj,v_proj']);
    assert.equal(run.status, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    lineage = JSON.parse(readFileSync(path.join(adapter, 'lineage.json'), 'utf8'));
    assert.equal(summary.adapter_hash, lineage.adapter);
    const version = (await api.query.datanets.versions(datanetId, 1)).unwrap();
    assert.equal(lineage.datanets.length, 1);
    assert.equal(lineage.datanets[0].datanet_id, datanetId);
    assert.equal(lineage.datanets[0].version, 1);
    assert.equal(lineage.datanets[0].merkle_root, version.merkleRoot.toHex(), 'the chain\'s Merkle root');
    assert.deepEqual(lineage.datanets[0].contributions.map((c) => c.id), contributionIds);
    assert.match(run.stderr, /training \[/, 'training shows progress');
  });

  step('OpenLoRA serves the adapter and attributes completions; verify recomputes them', TRAIN_TIMEOUT_MS, async () => {
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}`;
    const proc = spawn(OPENLORA, ['--port', String(port), '--lora', `towns=${adapter}`]);
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    try {
      await withTimeout((async () => {
        for (;;) {
          if (proc.exitCode !== null) throw new Error(`openlora exited ${proc.exitCode}:\n${log}`);
          try { if ((await fetch(`${url}/health`)).ok) return; } catch { /* starting */ }
          await new Promise((r) => setTimeout(r, 300));
        }
      })(), 120_000, `openlora to answer /health\n${log}`);
      const prompt = 'The copper bell of Quillon';
      for (const method of ['span', 'datainf']) {
        const r = await fetch(`${url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'towns', prompt, max_tokens: 12, temperature: 0, attribution: method }),
        });
        const body = await r.json();
        assert.equal(r.status, 200, JSON.stringify(body));
        assert.equal(body.attribution.method, method);
        assert.equal(body.receipt.attribution_record_hash, body.attribution.record_hash);
        assert.equal(body.attribution.index_root, method === 'span' ? lineage.span_index_root : lineage.gradient_store);
        const recordFile = path.join(work, `${method}.json`);
        writeFileSync(recordFile, JSON.stringify(body.attribution.record));
        const ok = modelfactory(['verify', '--adapter', adapter, '--record', recordFile, '--prompt', prompt]);
        assert.equal(ok.status, 0, `${ok.stdout}\n${ok.stderr}`);
        assert.equal(JSON.parse(ok.stdout).result.verdict, 'match');
        // A forged record (all of the fee to one contribution) is caught.
        const forged = { ...body.attribution.record, weights: [{ contribution: contributionIds[0], ppm: 1_000_000 }] };
        if (JSON.stringify(forged.weights) !== JSON.stringify(body.attribution.record.weights)) {
          writeFileSync(recordFile, JSON.stringify(forged));
          const bad = modelfactory(['verify', '--adapter', adapter, '--record', recordFile, '--prompt', prompt]);
          assert.equal(bad.status, 1, bad.stdout);
          assert.equal(JSON.parse(bad.stdout).result.verdict, 'weights_differ');
        }
      }
    } finally {
      proc.kill('SIGINT');
    }
  });

  step('an output that copies a contribution is attributed to it', 120_000, async () => {
    const run = modelfactory(['attribute', '--adapter', adapter, '--prompt', 'Tell me about Tarsk.',
      '--output', 'They say the bakers make a black rye bread with caraway seeds every Thursday morning.']);
    assert.equal(run.status, 0, run.stderr);
    const { record, spans } = JSON.parse(run.stdout);
    assert.equal(record.weights[0].contribution, contributionIds[1], JSON.stringify(record.weights));
    assert.equal(record.weights.reduce((s, w) => s + w.ppm, 0), 1_000_000);
    assert.ok(spans.length >= 1);
  });
});
