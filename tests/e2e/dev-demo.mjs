// The demo that `scripts/dev.sh` sets up on its fresh dev chain, so that a newcomer can request
// an inference right away: Alice publishes a small datanet of Charlie's files, ModelFactory trains
// an adapter on it, the running OpenLoRA engine loads it, Dave registers it as a model and Alice
// (whose attribution key `--dev` put in the node's keystore) registers as its operator. Then one
// inference is requested and its receipt printed, and one prepaid request is sent straight to the
// engine and settled in a batch.
//   node dev-demo.mjs <ws url> <engine url> <modelfactory binary> <work dir>

import path from 'node:path';

import { ApiPromise, Keyring, WsProvider } from '@polkadot/api';

import { datanetsRpc } from './datanets-rpc.mjs';
import { eventsOf, prepaid, publishDatanet, registerModel, TOWN_FILES, trainAdapter } from './poa.mjs';
import { describeDispatchError, signAndWaitFinalized } from './test/helpers.mjs';

const [wsUrl, engineUrl, modelfactoryBin, work] = process.argv.slice(2);
const OPEN = 10n ** 18n;
const say = (msg) => console.log(`[demo] ${msg}`);

const api = await ApiPromise.create({ provider: new WsProvider(wsUrl), rpc: datanetsRpc });
const keyring = new Keyring({ type: 'sr25519', ss58Format: 6736 });
const [alice, charlie, dave, eve, ferdie] = ['Alice', 'Charlie', 'Dave', 'Eve', 'Ferdie'].map((n) => keyring.addFromUri(`//${n}`));
const submit = async (tx, signer) => {
  const { events, dispatchError } = await signAndWaitFinalized(tx, signer);
  if (dispatchError) throw new Error(describeDispatchError(api, dispatchError));
  return events;
};

say('Charlie contributes three files to a datanet of Alice, who accepts them and publishes version 1');
const datanet = await publishDatanet(api, submit, { owner: alice, contributor: charlie, files: TOWN_FILES });
say(`datanet ${datanet.datanetId} version ${datanet.version}: contributions ${datanet.contributionIds.join(', ')}`);

say('ModelFactory trains a LoRA adapter on it (a few steps on Gemma 3 270M)');
const out = path.join(work, 'towns-adapter');
const { lineage, manifestHash } = trainAdapter(modelfactoryBin, {
  rpcUrl: wsUrl.replace(/^ws/, 'http'), datanetId: datanet.datanetId, version: datanet.version, out, steps: 4,
});
const loaded = await fetch(`${engineUrl}/v1/load_lora_adapter`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ lora_name: 'towns', lora_path: out, prefetch: true }),
});
if (!loaded.ok) throw new Error(`the engine did not load the adapter: ${await loaded.text()}`);
say(`adapter ${lineage.adapter} loaded into OpenLoRA as "towns"`);

const modelId = await registerModel(api, submit, {
  sudo: alice, owner: dave, lineage, manifestHash, priceIn: OPEN, priceOut: 2n * OPEN,
});
await submit(api.tx.attribution.registerOperator(alice.publicKey, [modelId]), alice);
say(`model ${modelId} registered by Dave; Alice operates it with this node's attribution key`);

const prompt = 'The copper bell of Quillon';
const requested = await submit(api.tx.attribution.requestInference(modelId, prompt, 16, 1n * OPEN), eve);
const requestId = eventsOf(requested, 'attribution', 'InferenceRequested')[0].data.requestId.toNumber();
say(`Eve asked model ${modelId} to complete "${prompt}" (request ${requestId}); waiting for the receipt...`);
/** The first event `method` of the attribution pallet for which `matches(data)` holds. */
const nextEvent = (method, matches) => new Promise((resolve) => {
  api.query.system.events((events) => {
    const e = events.find(({ event }) => event.section === 'attribution' && event.method === method
      && matches(event.data));
    if (e) resolve(e.event);
  });
});
const settled = await nextEvent('ReceiptSettled', (d) => d.requestId.toNumber() === requestId);
say(`receipt: ${JSON.stringify(settled.data.toHuman(), null, 2)}`);

say('Ferdie prepays 10 OPEN of credit and sends a signed request straight to the engine');
await submit(api.tx.attribution.depositCredit(10n * OPEN), ferdie);
const batchNonce = (await api.query.attribution.batchNonce(alice.address)).toNumber();
const paidPrompt = 'The river at Quillon';
const response = await fetch(`${engineUrl}/v1/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    model: lineage.adapter, prompt: paidPrompt, max_tokens: 16, temperature: 0,
    openledger: prepaid(api, ferdie, { adapter: lineage.adapter, prompt: paidPrompt, maxTokens: 16, nonce: 1, maxFee: OPEN }),
  }),
});
const completion = await response.json();
if (!response.ok) throw new Error(`the engine refused the prepaid request: ${JSON.stringify(completion)}`);
say(`the engine answered "${completion.choices[0].text}"; waiting for Alice's node to settle it in a batch...`);
const batch = await nextEvent('BatchSettled', (d) => d.operator.eq(alice.address) && d.nonce.toNumber() === batchNonce);
say(`batch: ${JSON.stringify(batch.data.toHuman(), null, 2)}
  its leaves, for anyone to check: ${engineUrl}/v1/batches/${batchNonce}`);
say(`request more with polkadot.js:
  await api.tx.attribution.requestInference(${modelId}, 'your prompt', 32, 10n ** 18n).signAndSend(eve);
  // then watch for attribution.ReceiptSettled; once the receipt matures (attribution.RewardsReleased,
  // 10 blocks later on this chain) contributors claim with api.tx.attribution.claimRewards()`);
process.exit(0);
