// The Proof-of-Attribution golden path with real processes: a --dev node whose off-chain worker
// is wired to a real OpenLoRA engine (`--inference-url`), contributors' files published as a
// datanet version, an adapter trained on it by ModelFactory, the model and the dev node's
// operator (Alice, whose attribution key `--dev` inserts) registered, and an inference requested
// through polkadot.js: the off-chain worker answers with a signed receipt and the fee is split
// to the plank. Then the receipts the pallet must refuse, each with its own error, and a refund;
// prepaid requests settled in a batch, a dispute, and a fraud proof against a batch.

import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';

import { Keyring } from '@polkadot/api';
import { hexToU8a, stringToU8a, u8aToHex } from '@polkadot/util';
import { blake2AsHex, signatureVerify } from '@polkadot/util-crypto';

import { datanetsRpc } from '../datanets-rpc.mjs';
import {
  contribute, eventsOf, feeSplit, prepaid, publishDatanet, receiptPayload, registerModel, requestTerms,
  startEngine, TOWN_FILES, trainAdapter,
} from '../poa.mjs';
import {
  OpenLedgerNode, START_TIMEOUT_MS, describeDispatchError, devArgs, freePorts, signAndWaitFinalized,
  stepDeclarer,
} from './helpers.mjs';

const MODELFACTORY = process.env.MODELFACTORY_BIN;
const OPENLORA = process.env.OPENLORA_BIN;
const OPEN = 10n ** 18n;
const PRICE_IN = 3n * OPEN;
const PRICE_OUT = 7n * OPEN;
const PROMPT = 'The copper bell of Quillon';
const MAX_OUTPUT_TOKENS = 12;
const MAX_FEE = 5n * OPEN;

describe('Proof of Attribution golden path on a --dev node with OpenLoRA', () => {
  let node;
  let engine;
  let startError;
  let work;
  let enginePort;
  let accounts;
  let datanet;
  let trained;
  let modelId;
  let settled;
  let engineOptions;
  let charlieBatch;

  const step = stepDeclarer('the dev node', () => startError, (name, timeoutMs, fn) =>
    node.step(name, timeoutMs, fn));

  before(async () => {
    try {
      assert.ok(MODELFACTORY && OPENLORA, 'set MODELFACTORY_BIN and OPENLORA_BIN (scripts/test.sh does)');
      work = mkdtempSync(path.join(os.tmpdir(), 'openledger-e2e-golden-'));
      [enginePort] = await freePorts(1);
      node = await OpenLedgerNode.start({
        name: 'golden',
        args: (setup) => [...devArgs(setup), '--inference-url', `http://127.0.0.1:${enginePort}`],
        apiOptions: { rpc: datanetsRpc },
      });
      const keyring = new Keyring({ type: 'sr25519', ss58Format: 6736 });
      accounts = Object.fromEntries(['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie']
        .map((n) => [n.toLowerCase(), keyring.addFromUri(`//${n}`)]));
    } catch (error) {
      startError = error;
    }
  }, { timeout: START_TIMEOUT_MS + 10_000 });

  after(async () => {
    await engine?.stop();
    await node?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, { timeout: 60_000 });

  async function submit(tx, signer) {
    const { events, dispatchError, blockHash } = await signAndWaitFinalized(tx, signer);
    assert.equal(dispatchError, undefined, describeDispatchError(node.api, dispatchError));
    events.blockHash = blockHash;
    return events;
  }

  /** Submits `tx` and expects it to fail with `attribution.<error>`. */
  async function expectError(tx, signer, error) {
    const { dispatchError } = await signAndWaitFinalized(tx, signer);
    assert.ok(dispatchError, `expected attribution.${error}, the call succeeded`);
    assert.equal(describeDispatchError(node.api, dispatchError).split(' ')[2], `attribution.${error}`);
  }

  /** Polls `probe` every 2 s until it returns something. */
  const waitFor = async (probe, timeoutMs, what) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found) return found;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  };

  const free = async (api, who, at) =>
    (await (at ? await api.at(at) : api).query.system.account(who)).data.free.toBigInt();

  /** Alice's batch `nonce` as the engine archived it, decoded with the chain's types. */
  const archivedBatch = async (api, nonce) => {
    const response = await fetch(`${engine.url}/v1/batches/${nonce}`);
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    return {
      root: body.root,
      batch: api.createType('PalletAttributionReceiptBatch', body.batch),
      leaves: body.leaves.map((l) => api.createType('PalletAttributionBatchLeaf', l)),
    };
  };

  /** Waits for the engine's journal to be settled on chain; its page. */
  const settledJournal = () => waitFor(async () => {
    const p = await (await fetch(`http://127.0.0.1:${enginePort}/v1/journal`)).json();
    return p.entries.length === 0 ? p : null;
  }, 60_000, 'the journal to be settled');

  /** The finalized events of the first block with an `attribution.<method>` event `matches`. */
  const finalizedEvent = (api, method, matches, timeoutMs) => waitFor(async () => {
    const hash = await api.rpc.chain.getFinalizedHead();
    const events = await (await api.at(hash)).query.system.events();
    const e = events.find(({ event }) => event.section === 'attribution' && event.method === method && matches(event.data));
    return e ? { event: e.event, events, hash } : null;
  }, timeoutMs, `attribution.${method}`);

  step('a contributor\'s files become version 1 of a datanet; ModelFactory trains an adapter on it', 900_000, async (api) => {
    const { alice, charlie } = accounts;
    datanet = await publishDatanet(api, submit, { owner: alice, contributor: charlie, files: TOWN_FILES });
    trained = trainAdapter(MODELFACTORY, {
      rpcUrl: `http://127.0.0.1:${node.rpcPort}`, datanetId: datanet.datanetId, version: datanet.version,
      out: path.join(work, 'adapter'),
    });
    assert.deepEqual(trained.lineage.datanets[0].contributions.map((c) => c.id), datanet.contributionIds);
    // The gradient method weighs every contribution of the lineage, so the contributors are paid
    // whatever the few-step adapter outputs; the span method pays only copied text.
    engineOptions = {
      port: enginePort,
      loras: [`towns=${path.join(work, 'adapter')}`],
      extraArgs: ['--attribution', 'datainf', '--ledger-genesis', api.genesisHash.toHex(), '--journal', path.join(work, 'journal')],
    };
    engine = await startEngine(OPENLORA, engineOptions);
  });

  step('the model and two operators are registered: Alice (this node\'s key) and Bob (no node)', 120_000, async (api) => {
    const { alice, bob, dave } = accounts;
    modelId = await registerModel(api, submit, {
      sudo: alice, owner: dave, lineage: trained.lineage, manifestHash: trained.manifestHash,
      priceIn: PRICE_IN, priceOut: PRICE_OUT,
    });
    const model = (await api.query.modelRegistry.models(modelId)).unwrap();
    assert.equal(model.adapterHash.toHex(), trained.lineage.adapter);
    assert.equal(model.status.toString(), 'Active');
    // `--dev` put //Alice's attribution key in the node's keystore; Bob's key is nowhere.
    await submit(api.tx.attribution.registerOperator(u8aToHex(alice.publicKey), [modelId]), alice);
    await submit(api.tx.attribution.registerOperator(u8aToHex(bob.publicKey), [modelId]), bob);
    assert.deepEqual((await api.query.attribution.modelOperators(modelId)).map((a) => a.toString()),
      [alice.address, bob.address]);
  });

  step('Eve requests an inference; Alice\'s off-chain worker answers with a signed receipt and the fee is split to the plank', 180_000, async (api) => {
    const { eve, dave } = accounts;
    const requested = await submit(
      api.tx.attribution.requestInference(modelId, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE), eve);
    const request = eventsOf(requested, 'attribution', 'InferenceRequested')[0].data;
    assert.equal(request.operator.toString(), accounts.alice.address, 'request 0 goes to the first operator');
    const requestId = request.requestId.toNumber();

    // Wait for the settlement in a finalized block.
    settled = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ReceiptSettled within 150 s')), 150_000);
      let unsubscribe;
      api.rpc.chain.subscribeFinalizedHeads(async (header) => {
        const at = await api.at(header.hash);
        const events = await at.query.system.events();
        const event = events.find(({ event: e }) => e.section === 'attribution' && e.method === 'ReceiptSettled'
          && e.data.requestId.toNumber() === requestId);
        if (event) {
          clearTimeout(timer);
          unsubscribe?.();
          resolve({ blockHash: header.hash.toHex(), event: event.event, events });
        }
      }).then((u) => { unsubscribe = u; }, reject);
    });
    const { event, blockHash, events } = settled;
    const parent = (await api.rpc.chain.getHeader(blockHash)).parentHash.toHex();
    const output = Buffer.from(event.data.output.toU8a(true)).toString('utf8');

    // The output is the engine's greedy completion of the prompt.
    const direct = await (await fetch(`${engine.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: trained.lineage.adapter, prompt: PROMPT, max_tokens: MAX_OUTPUT_TOKENS, temperature: 0, attribution: true }),
    })).json();
    assert.equal(output, direct.choices[0].text);
    assert.equal(event.data.outputTokens.toNumber(), direct.receipt.output_tokens);
    assert.equal(event.data.inputTokens.toNumber(), direct.receipt.input_tokens);
    assert.equal(event.data.recordHash.toHex(), direct.attribution?.record_hash ?? `0x${'0'.repeat(64)}`);

    const split = (await api.query.attribution.feeParams()).toJSON();
    const weights = (direct.attribution?.weights ?? []).map((w) => [w.contribution, w.ppm])
      .sort((a, b) => a[0] - b[0]);
    const expected = feeSplit({
      tokensIn: event.data.inputTokens.toNumber(), tokensOut: event.data.outputTokens.toNumber(),
      priceIn: PRICE_IN, priceOut: PRICE_OUT,
      split: { owner: split.owner, stakers: split.stakers, contributors: split.contributors, platformFee: BigInt(split.platformFee) },
      weights,
    });
    const parts = event.data.parts;
    assert.equal(parts.fee.toBigInt(), expected.fee);
    assert.equal(parts.owner.toBigInt(), expected.owner);
    assert.equal(parts.stakers.toBigInt(), expected.stakers);
    assert.equal(parts.contributors.toBigInt(), expected.contributors);
    assert.equal(parts.treasury.toBigInt(), expected.treasury);
    assert.equal(expected.owner + expected.stakers + expected.contributors + expected.treasury, expected.fee);
    settled.expected = expected;
    settled.requestId = requestId;

    // Balances, to the plank, across the settlement block (the receipt pays no transaction fee).
    const pot = (name) => u8aToHex(new Uint8Array([...stringToU8a('modl'), ...stringToU8a(name), ...new Uint8Array(20)]));
    const [treasury, stakingPot, rewardPot] = ['ol/trsry', 'ol/stkrw', 'ol/attrb'].map(pot);
    const delta = async (who) => (await free(api, who, blockHash)) - (await free(api, who, parent));
    assert.equal(await delta(dave.address), expected.owner, 'model owner');
    assert.equal(await delta(stakingPot), expected.stakers, 'staking pot');
    // The whole contributors' pool waits in the reward pot until the receipt matures; then the
    // contributors are credited and the pool's rounding remainder goes to the treasury.
    const remainder = expected.pool - expected.contributors;
    assert.equal(await delta(rewardPot), expected.pool, 'reward pot');
    assert.equal(await delta(treasury), expected.treasury - remainder, 'treasury');
    assert.equal(await delta(eve.address), MAX_FEE - expected.fee, 'the unused escrow returns to the requester');
    assert.equal(event.data.refunded.toBigInt(), MAX_FEE - expected.fee);
    assert.ok((await api.query.attribution.requests(requestId)).isNone);
    const record = (await api.query.attribution.receipts(requestId)).unwrap();
    assert.equal(record.status.toString(), 'Maturing');
    assert.deepEqual(record.credits.map(([, , amount]) => amount.toBigInt()), expected.amounts.filter((a) => a > 0n));
  });

  step('the receipt matures after its challenge window and the contributor claims the rewards credited to them', 180_000, async (api) => {
    const { charlie } = accounts;
    assert.equal((await api.query.attribution.rewards(charlie.address)).toBigInt(), 0n, 'nothing is claimable inside the window');
    const { challengeWindow } = (await api.query.attribution.disputeConfig()).toJSON();
    const settledAt = (await api.query.attribution.receipts(settled.requestId)).unwrap().settledAt.toNumber();
    const matured = await waitFor(async () => {
      const record = (await api.query.attribution.receipts(settled.requestId)).unwrap();
      return record.status.toString() === 'Final' ? record : null;
    }, 150_000, 'the receipt to mature');
    assert.equal(matured.credits.length, 0);
    const head = (await api.rpc.chain.getHeader()).number.toNumber();
    assert.ok(head > settledAt + challengeWindow, `matured at or before block ${head}, window ends after ${settledAt + challengeWindow}`);
    const owed = (await api.query.attribution.rewards(charlie.address)).toBigInt();
    // Every contribution of the datanet is Charlie's.
    assert.equal(owed, settled.expected.contributors);
    assert.ok(owed > 0n, 'the receipt credits the contributor');
    const before = await free(api, charlie.address);
    const events = await submit(api.tx.attribution.claimRewards(), charlie);
    assert.equal(eventsOf(events, 'attribution', 'RewardsClaimed')[0].data.amount.toBigInt(), owed);
    const fee = eventsOf(events, 'transactionPayment', 'TransactionFeePaid')[0].data.actualFee.toBigInt();
    assert.equal(await free(api, charlie.address, events.blockHash) - before, owed - fee);
    assert.equal((await api.query.attribution.rewards(charlie.address)).toBigInt(), 0n);
    await expectError(api.tx.attribution.claimRewards(), charlie, 'NothingToClaim');
  });

  step('receipts for Bob\'s request: wrong key, outside the lineage and over the token limit are refused; a valid one settles once', 300_000, async (api) => {
    const { bob, eve, ferdie, alice, charlie } = accounts;
    // Version 2 adds a contribution the model's lineage (version 1) does not cover.
    const [outside] = await contribute(api, submit, datanet.datanetId, charlie, ['The river Ost floods every spring.']);
    await submit(api.tx.datanets.review(outside, 'Approve', 80), alice);
    await submit(api.tx.datanets.publishVersion(datanet.datanetId), alice);

    const requested = await submit(
      api.tx.attribution.requestInference(modelId, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE), eve);
    const request = eventsOf(requested, 'attribution', 'InferenceRequested')[0].data;
    assert.equal(request.operator.toString(), bob.address, 'request 1 goes to the second operator');
    const text = ' rings at noon.';
    const receipt = {
      requestId: request.requestId, operator: bob.address, modelId, adapterHash: trained.lineage.adapter,
      promptHash: blake2AsHex(PROMPT, 256), outputHash: blake2AsHex(text, 256),
      inputTokens: 7, outputTokens: 4, method: 'Span', indexRoot: trained.lineage.span_index_root,
      recordHash: `0x${'11'.repeat(32)}`, weights: [[datanet.contributionIds[2], 1_000_000]], output: text,
    };
    const signed = (r, key = bob) => api.tx.attribution.submitReceipt(r, u8aToHex(key.sign(receiptPayload(api, r))));

    await expectError(signed(receipt, ferdie), bob, 'BadSignature');
    await expectError(signed({ ...receipt, weights: [[outside, 1_000_000]] }), bob, 'NotInLineage');
    await expectError(signed({ ...receipt, outputTokens: MAX_OUTPUT_TOKENS + 1 }), bob, 'TooManyOutputTokens');
    await expectError(signed({ ...receipt, inputTokens: PROMPT.length + 5 }), bob, 'TooManyInputTokens');

    const valid = signed(receipt);
    const events = await submit(valid, ferdie);
    assert.equal(eventsOf(events, 'attribution', 'ReceiptSettled').length, 1);
    // The same signed receipt again: a replay.
    await expectError(signed(receipt), ferdie, 'AlreadySettled');
  });

  step('a request nobody answers is refunded after its deadline', 180_000, async (api) => {
    const { eve, bob } = accounts;
    // Request 2 goes to Alice, whose worker answers it; request 3 to Bob, who never does.
    const events = await submit(api.tx.utility.batchAll([
      api.tx.attribution.requestInference(modelId, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE),
      api.tx.attribution.requestInference(modelId, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE),
    ]), eve);
    const unanswered = eventsOf(events, 'attribution', 'InferenceRequested')
      .find((e) => e.data.operator.toString() === bob.address).data;
    await expectError(api.tx.attribution.refund(unanswered.requestId), bob, 'NotExpired');
    const deadline = unanswered.deadline.toNumber();
    for (;;) {
      const head = (await api.rpc.chain.getHeader()).number.toNumber();
      if (head > deadline) break;
      await new Promise((r) => setTimeout(r, 3000));
    }
    const refunded = await submit(api.tx.attribution.refund(unanswered.requestId), bob);
    const event = eventsOf(refunded, 'attribution', 'RequestRefunded')[0].data;
    assert.equal(event.amount.toBigInt(), MAX_FEE);
    assert.equal(event.requester.toString(), eve.address);
    assert.ok((await api.query.attribution.requests(unanswered.requestId)).isNone);
  });

  step('Charlie prepays credit and signs requests to the engine; Alice\'s off-chain worker settles its journal in one batch', 240_000, async (api) => {
    const { alice, charlie } = accounts;
    await submit(api.tx.attribution.depositCredit(10n * OPEN), charlie);
    const adapter = (await api.query.modelRegistry.models(modelId)).unwrap().adapterHash.toHex();
    const platform = BigInt((await api.query.attribution.feeParams()).toJSON().platformFee);
    const reserved = async () => (await api.query.system.account(charlie.address)).data.reserved.toBigInt();
    const before = await reserved();
    const firstBatch = (await api.query.attribution.batchNonce(alice.address)).toNumber();
    charlieBatch = firstBatch;

    const authorize = (prompt, nonce) =>
      prepaid(api, charlie, { adapter, prompt, maxTokens: MAX_OUTPUT_TOKENS, nonce, maxFee: MAX_FEE });
    let fees = 0n;
    for (const [i, prompt] of ['The copper bell of Quillon', 'The river at Quillon', 'Market day in Quillon'].entries()) {
      const response = await fetch(`http://127.0.0.1:${enginePort}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: adapter, prompt, max_tokens: MAX_OUTPUT_TOKENS, temperature: 0, openledger: authorize(prompt, i + 1) }),
      });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      const { input_tokens: tokensIn, output_tokens: tokensOut } = body.receipt;
      fees += (BigInt(tokensIn) * PRICE_IN + BigInt(tokensOut) * PRICE_OUT) / 1000n + platform;
    }

    const record = await waitFor(async () => {
      const r = await api.query.attribution.batches(alice.address, firstBatch);
      return r.isSome ? r.unwrap() : null;
    }, 120_000, 'Alice\'s batch');
    assert.equal(record.receipts.toNumber(), 3);
    assert.equal(record.fee.toBigInt(), fees);
    assert.equal(record.status.toString(), 'Maturing');
    assert.equal(before - await reserved(), fees, 'Charlie\'s credit paid exactly the three fees');
    assert.equal((await api.query.attribution.settledNonce(charlie.address)).unwrap().toNumber(), 3);
    // Then the engine's journal is settled: nothing is left to batch.
    const page = await settledJournal();
    assert.equal(page.settled_through, page.last_seq);
    assert.equal((await api.query.attribution.batchNonce(alice.address)).toNumber(), firstBatch + 1);
  });

  step('a challenged receipt is rerun by the other operator\'s off-chain worker, which votes it right: the challenger loses its bond', 420_000, async (api) => {
    const { alice, bob, ferdie } = accounts;
    // From now on this node also holds Bob's attribution key, so Bob's worker verifies.
    await api.rpc.author.insertKey('attr', '//Bob', u8aToHex(bob.publicKey));
    const requested = await submit(
      api.tx.attribution.requestInference(modelId, PROMPT, MAX_OUTPUT_TOKENS, MAX_FEE), accounts.eve);
    const request = eventsOf(requested, 'attribution', 'InferenceRequested')[0].data;
    assert.equal(request.operator.toString(), alice.address);
    const record = await waitFor(async () => {
      const r = await api.query.attribution.receipts(request.requestId);
      return r.isSome ? r.unwrap() : null;
    }, 150_000, 'Alice\'s receipt');
    assert.equal(record.status.toString(), 'Maturing');

    // Ferdie claims all of the pool was owed to one contribution.
    const params = (await api.query.attribution.disputeConfig()).toJSON();
    const bond = BigInt(params.challengeBond);
    const before = { alice: await free(api, alice.address), ferdie: await free(api, ferdie.address) };
    const challenged = await submit(api.tx.attribution.challenge(
      request.requestId, PROMPT, `0x${'33'.repeat(32)}`, [[datanet.contributionIds[0], 1_000_000]]), ferdie);
    const opened = eventsOf(challenged, 'attribution', 'DisputeOpened')[0].data;
    assert.deepEqual(opened.verifiers.map((v) => v.toString()), [bob.address]);
    const challengeFee = eventsOf(challenged, 'transactionPayment', 'TransactionFeePaid')[0].data.actualFee.toBigInt();

    const resolved = await finalizedEvent(api, 'DisputeResolved', (d) => d.requestId.eq(request.requestId), 300_000);
    const vote = resolved.events.map(({ event }) => event)
      .find((e) => e.section === 'attribution' && e.method === 'VoteCast');
    assert.ok(vote, 'Bob\'s vote resolved the dispute');
    assert.equal(vote.data.verifier.toString(), bob.address);
    assert.equal(resolved.event.data.outcome.toString(), 'Upheld');
    assert.equal(resolved.event.data.slashed.toBigInt(), bond);
    const toWinner = resolved.event.data.toWinner.toBigInt();
    assert.equal(toWinner, bond / 2n);
    assert.equal(await free(api, ferdie.address, resolved.hash), before.ferdie - challengeFee - bond);
    assert.equal(await free(api, alice.address, resolved.hash), before.alice + toWinner);
    const final = (await api.query.attribution.receipts(request.requestId)).unwrap();
    assert.equal(final.status.toString(), 'Final');
    assert.ok((await api.query.attribution.disputes(request.requestId)).isNone);
  });

  step('Charlie checks Alice\'s batches against the engine\'s archive; a request forged into the engine\'s journal is batched, and Charlie proves the fraud', 300_000, async (api) => {
    const { alice, charlie } = accounts;
    const adapter = (await api.query.modelRegistry.models(modelId)).unwrap().adapterHash.toHex();
    const platform = BigInt((await api.query.attribution.feeParams()).toJSON().platformFee);
    const archived = (nonce) => archivedBatch(api, nonce);
    /** Whether the payer signed the request its leaf charges it for. */
    const signedByPayer = (leaf) => signatureVerify(
      requestTerms(api, { adapter, promptHash: leaf.promptHash, maxTokens: leaf.maxTokens, nonce: leaf.nonce, maxFee: leaf.maxFee }),
      leaf.signature.asSr25519, leaf.payer,
    ).isValid;

    // The honest batch of the three requests: its leaves prove the root on chain, and each is
    // a request Charlie signed, with running totals up to what he was charged.
    const honest = await archived(charlieBatch);
    const honestRecord = (await api.query.attribution.batches(alice.address, charlieBatch)).unwrap();
    assert.equal(honest.root, honestRecord.receiptsRoot.toHex());
    assert.deepEqual(honest.leaves.map((l) => [l.payer.toString(), l.nonce.toNumber()]),
      [1, 2, 3].map((n) => [charlie.address, n]));
    assert.ok(honest.leaves.every(signedByPayer));
    assert.equal(honest.leaves[2].payerTotal.toBigInt(), honestRecord.fee.toBigInt());

    // The engine is restarted with two entries appended to its journal: nonce 4, which Charlie
    // signed, and nonce 5, whose signature is Charlie's for another prompt.
    await engine.stop();
    const journal = path.join(work, 'journal');
    const { through } = JSON.parse(readFileSync(path.join(journal, 'settled.json'), 'utf8'));
    const entry = (seq, nonce, prompt, signedPrompt) => ({
      seq, account: u8aToHex(charlie.publicKey), nonce, max_fee: MAX_FEE.toString(),
      signature: prepaid(api, charlie, { adapter, prompt: signedPrompt, maxTokens: MAX_OUTPUT_TOKENS, nonce, maxFee: MAX_FEE }).signature,
      adapter_hash: adapter, prompt_hash: blake2AsHex(prompt, 256), max_tokens: MAX_OUTPUT_TOKENS,
      output_hash: blake2AsHex(`output ${nonce}`, 256), input_tokens: 5, output_tokens: MAX_OUTPUT_TOKENS,
      method: 'none', index_root: u8aToHex(new Uint8Array(32)), record_hash: u8aToHex(new Uint8Array(32)), weights: [],
    });
    appendFileSync(path.join(journal, 'journal.jsonl'), [
      entry(through + 1, 4, 'Snow on Quillon', 'Snow on Quillon'),
      entry(through + 2, 5, 'A request Charlie never made', 'Snow on Quillon'),
    ].map((e) => `${JSON.stringify(e)}\n`).join(''));
    engine = await startEngine(OPENLORA, engineOptions);

    const nonce = charlieBatch + 1;
    const fee = (5n * PRICE_IN + BigInt(MAX_OUTPUT_TOKENS) * PRICE_OUT) / 1000n + platform;
    const record = await waitFor(async () => {
      const r = await api.query.attribution.batches(alice.address, nonce);
      return r.isSome ? r.unwrap() : null;
    }, 120_000, 'Alice\'s batch of the forged entries');
    assert.equal(record.fee.toBigInt(), 2n * fee);

    // Charlie finds the leaf he did not sign and proves it with the engine's Merkle proof.
    const batch = await archived(nonce);
    assert.equal(batch.root, record.receiptsRoot.toHex());
    const index = batch.leaves.findIndex((l) => !signedByPayer(l));
    assert.equal(index, 1);
    const proof = await (await fetch(`${engine.url}/v1/batches/${nonce}/proofs/${index}`)).json();
    assert.equal(proof.proof.length, 1);
    const before = await free(api, charlie.address);
    const events = await submit(api.tx.attribution.challengeBatch(alice.address, nonce, batch.batch.charges,
      { Leaf: { leaf: batch.leaves[index], index, proof: proof.proof } }), charlie);
    const proven = eventsOf(events, 'attribution', 'BatchFraudProven')[0].data;
    assert.equal(proven.kind.toString(), 'Unsigned');
    assert.equal(proven.payer.toString(), charlie.address);
    assert.equal(proven.refunded.toBigInt(), fee, 'Charlie gets back the fee of the request he did not sign');
    assert.ok(proven.slashed.toBigInt() > 0n);
    const txFee = eventsOf(events, 'transactionPayment', 'TransactionFeePaid')[0].data.actualFee.toBigInt();
    assert.equal(await free(api, charlie.address, events.blockHash),
      before + fee + proven.toChallenger.toBigInt() - txFee);
    assert.ok((await api.query.attribution.batches(alice.address, nonce)).unwrap().fraudProven.isTrue);
  });

  step('a leaf whose weights Alice\'s engine forged is challenged with its own record: Bob\'s off-chain worker recomputes it, Alice is slashed and the leaf pays by the true weights', 420_000, async (api) => {
    const { alice, bob, charlie } = accounts;
    const adapter = (await api.query.modelRegistry.models(modelId)).unwrap().adapterHash.toHex();
    // The true answer to PROMPT and its attribution record, from a request the engine does not
    // journal; `record_bytes` is the record the chain will hash.
    const response = await fetch(`${engine.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: adapter, prompt: PROMPT, max_tokens: MAX_OUTPUT_TOKENS, temperature: 0, attribution: true }),
    });
    const answer = await response.json();
    assert.equal(response.status, 200, JSON.stringify(answer));
    const record = answer.attribution;
    assert.equal(blake2AsHex(hexToU8a(record.record_bytes), 256), record.record_hash);
    const byId = (weights) => weights.map((w) => [Number(w.contribution), w.ppm]).sort((a, b) => a[0] - b[0]);
    const trueWeights = byId(record.weights);
    assert.ok(trueWeights.length > 0, 'DataInf attributes the answer');
    // The forgery: all of the weight on a contribution the true record does not weigh most, so
    // that it differs from the true weights whichever contributions DataInf finds.
    const top = trueWeights.reduce((best, w) => (w[1] > best[1] ? w : best))[0];
    const forged = [[datanet.contributionIds.find((id) => Number(id) !== top), 1_000_000]];

    // Alice's engine journals the request with the true record's hash and all of the weight on
    // one contribution.
    const page = await settledJournal();
    await engine.stop();
    const nonce = 6;
    appendFileSync(path.join(work, 'journal', 'journal.jsonl'), `${JSON.stringify({
      seq: page.last_seq + 1, account: u8aToHex(charlie.publicKey), nonce, max_fee: MAX_FEE.toString(),
      signature: prepaid(api, charlie, { adapter, prompt: PROMPT, maxTokens: MAX_OUTPUT_TOKENS, nonce, maxFee: MAX_FEE }).signature,
      adapter_hash: adapter, prompt_hash: answer.receipt.prompt_hash, max_tokens: MAX_OUTPUT_TOKENS,
      output_hash: answer.receipt.output_hash, input_tokens: answer.receipt.input_tokens,
      output_tokens: answer.receipt.output_tokens, method: 'datainf', index_root: record.index_root,
      record_hash: record.record_hash, weights: forged.map(([contribution, ppm]) => ({ contribution, ppm })),
    })}\n`);
    engine = await startEngine(OPENLORA, engineOptions);

    const batchNonce = charlieBatch + 2;
    const settledBatch = await waitFor(async () => {
      const r = await api.query.attribution.batches(alice.address, batchNonce);
      return r.isSome ? r.unwrap() : null;
    }, 120_000, 'Alice\'s batch of the forged leaf');
    assert.equal(settledBatch.receipts.toNumber(), 1);
    // Its only credit is the forged contribution's: the contributors' share of the whole fee.
    const split = (await api.query.attribution.feeParams()).toJSON();
    const pool = ((settledBatch.fee.toBigInt() - BigInt(split.platformFee)) * BigInt(split.contributors)) / 1_000_000_000n;
    const credits = (batch) => batch.credits.map(([id, , amount]) => [id.toNumber(), amount.toBigInt()]).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(credits(settledBatch), [[forged[0][0], pool]]);

    // The leaf attests the true record with the forged weights.
    const { leaves } = await archivedBatch(api, batchNonce);
    const attestation = (weights) =>
      blake2AsHex(api.createType('(H256, Vec<(u64, u32)>)', [record.record_hash, weights]).toU8a(), 256);
    assert.equal(leaves[0].attestation.toHex(), attestation(forged));
    const proof = await (await fetch(`${engine.url}/v1/batches/${batchNonce}/proofs/0`)).json();

    const before = await free(api, charlie.address);
    const events = await submit(api.tx.attribution.challengeLeaf(alice.address, batchNonce, {
      leaf: { leaf: leaves[0], index: 0, proof: proof.proof },
      prompt: PROMPT,
      record: record.record_bytes,
      attestedWeights: forged,
      recordHash: record.record_hash,
      weights: trueWeights,
    }), charlie);
    const opened = eventsOf(events, 'attribution', 'LeafDisputeOpened')[0].data;
    assert.deepEqual(opened.verifiers.map((v) => v.toString()), [bob.address]);
    const txFee = eventsOf(events, 'transactionPayment', 'TransactionFeePaid')[0].data.actualFee.toBigInt();
    // Held from the challenge on (Bob's worker may have voted by the time it is finalized).
    const held = await (await api.at(events.blockHash)).query.attribution.batches(alice.address, batchNonce);
    assert.equal(held.unwrap().status.toString(), 'Disputed');

    const resolved = await finalizedEvent(api, 'LeafDisputeResolved', (d) => d.nonce.toNumber() === batchNonce, 300_000);
    const vote = resolved.events.map(({ event }) => event)
      .find((e) => e.section === 'attribution' && e.method === 'LeafVoteCast');
    assert.ok(vote, 'Bob\'s vote resolved the dispute');
    assert.equal(vote.data.verifier.toString(), bob.address);
    assert.equal(vote.data.attestation.toHex(), attestation(trueWeights));
    assert.equal(resolved.event.data.outcome.toString(), 'Overturned');
    const slashed = resolved.event.data.slashed.toBigInt();
    const toWinner = resolved.event.data.toWinner.toBigInt();
    assert.ok(slashed > 0n);
    assert.equal(toWinner, slashed / 2n);
    // Charlie's bond came back with half of Alice's slash.
    assert.equal(await free(api, charlie.address, resolved.hash), before - txFee + toWinner);
    // The leaf's part of the pool now follows the true weights.
    const after = (await (await api.at(resolved.hash)).query.attribution.batches(alice.address, batchNonce)).unwrap();
    assert.equal(after.status.toString(), 'Maturing');
    assert.deepEqual(credits(after),
      trueWeights.map(([id, ppm]) => [id, (pool * BigInt(ppm)) / 1_000_000n]).filter(([, amount]) => amount > 0n));
    assert.ok((await api.query.attribution.leafDisputes(alice.address, batchNonce)).isNone);
  });
});
