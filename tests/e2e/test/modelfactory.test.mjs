// Proof of Attribution off chain, end to end: contributors' files become a published datanet
// version on a --dev node (polkadot.js), ModelFactory trains an adapter on that version through
// the node's RPC (files checked against their hashes, the version against its Merkle root),
// OpenLoRA serves the adapter with the real default model and attributes completions, and
// `modelfactory verify` recomputes the records a third party would dispute.
// Training here is a few steps on the real Gemma 3 270M: enough to exercise every part, not
// to teach it anything (the bench measures that).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';

import { Keyring } from '@polkadot/api';
import { datanetsRpc } from '../datanets-rpc.mjs';
import {
  modelfactory as runModelfactory, publishDatanet, startEngine, TOWN_FILES, trainAdapter,
} from '../poa.mjs';
import {
  OpenLedgerNode,
  START_TIMEOUT_MS,
  describeDispatchError,
  freePorts,
  signAndWaitFinalized,
  stepDeclarer,
} from './helpers.mjs';

const MODELFACTORY = process.env.MODELFACTORY_BIN;
const OPENLORA = process.env.OPENLORA_BIN;
const TX_TIMEOUT_MS = 60_000;
const TRAIN_TIMEOUT_MS = 600_000;


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

  const modelfactory = (args, { timeout = TRAIN_TIMEOUT_MS } = {}) =>
    runModelfactory(MODELFACTORY, args, { timeout });

  step('contributors upload three files, the owner accepts them and publishes version 1', TX_TIMEOUT_MS * 3, async (api) => {
    const published = await publishDatanet(api, (tx, signer) => submit(api, tx, signer), {
      owner: alice, contributor: charlie, files: TOWN_FILES,
    });
    assert.equal(published.datanetId, datanetId);
    assert.equal(published.version, 1);
    assert.equal(published.contributionIds.length, 3);
    contributionIds.push(...published.contributionIds);
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
    const trained = trainAdapter(MODELFACTORY, { rpcUrl: rpcUrl(), datanetId, version: 1, out: adapter });
    const { run } = trained;
    const summary = JSON.parse(run.stdout);
    lineage = trained.lineage;
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
    const engine = await startEngine(OPENLORA, { port, loras: [`towns=${adapter}`] });
    const { url } = engine;
    try {
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
        // A forged record is caught: all of the fee to a contribution the true record does not
        // weigh most, so that it differs from the true weights whatever they are.
        const top = body.attribution.record.weights.reduce((best, w) => (w.ppm > best.ppm ? w : best), { ppm: -1 });
        const victim = contributionIds.find((id) => id !== top.contribution);
        const forged = { ...body.attribution.record, weights: [{ contribution: victim, ppm: 1_000_000 }] };
        writeFileSync(recordFile, JSON.stringify(forged));
        const bad = modelfactory(['verify', '--adapter', adapter, '--record', recordFile, '--prompt', prompt]);
        assert.equal(bad.status, 1, bad.stdout);
        assert.equal(JSON.parse(bad.stdout).result.verdict, 'weights_differ');
      }
    } finally {
      await engine.stop();
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
