// A file uploaded through one node of a network can be downloaded through any
// other: on the two-validator `local` chain, Alice's node stores an upload and
// Bob's node, which never saw it, fetches it from her over the datanets
// request-response protocol, verifies it by hash and keeps a copy.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { u8aToHex } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';

import { datanetsRpc } from '../datanets-rpc.mjs';
import { START_TIMEOUT_MS, runStep, startLocalNetwork, stepDeclarer } from './helpers.mjs';

const PEERING_TIMEOUT_MS = 60_000;
const TRANSFER_TIMEOUT_MS = 60_000;

describe('datanet files across the local network (Alice and Bob)', () => {
  let alice;
  let bob;
  let startError;

  const step = stepDeclarer('the local network', () => startError, (name, timeoutMs, fn) =>
    runStep([alice, bob], name, timeoutMs, () => fn(alice.api, bob.api)));

  before(async () => {
    try {
      ({ alice, bob } = await startLocalNetwork({ apiOptions: { rpc: datanetsRpc } }));
    } catch (error) {
      startError = error;
    }
  }, { timeout: 2 * START_TIMEOUT_MS + 60_000 });

  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
  }, { timeout: 60_000 });

  step('the nodes are peers', PEERING_TIMEOUT_MS, async (aliceApi, bobApi) => {
    for (;;) {
      const healths = await Promise.all([aliceApi.rpc.system.health(), bobApi.rpc.system.health()]);
      if (healths.every((health) => health.peers.toNumber() >= 1)) return;
      await sleep(500);
    }
  });

  step('a file uploaded through Alice downloads through Bob, byte for byte', TRANSFER_TIMEOUT_MS, async (aliceApi, bobApi) => {
    const file = new Uint8Array(randomBytes(1024 * 1024));
    const hash = blake2AsHex(file, 256);
    assert.equal((await aliceApi.rpc.datanets.upload(u8aToHex(file))).toJSON().hash, hash);
    assert.equal((await bobApi.rpc.datanets.status(hash)).toJSON().stored, false, 'Bob has not seen it');

    const downloaded = (await bobApi.rpc.datanets.download(hash)).toU8a(true);
    assert.equal(downloaded.length, file.length);
    assert.equal(blake2AsHex(downloaded, 256), hash);
    assert.deepEqual(Buffer.from(downloaded), Buffer.from(file));

    const status = (await bobApi.rpc.datanets.status(hash)).toJSON();
    assert.equal(status.stored, true, 'Bob keeps the copy he fetched');
    assert.equal(status.size, file.length);
  });
});
