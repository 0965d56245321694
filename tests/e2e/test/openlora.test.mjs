// OpenLoRA with the real default model: `openlora` with no arguments serves Gemma 3 270M
// (fetched by scripts/fetch-model.sh), and an OpenAI-style client gets text and receipt fields.
// Gemma 3 270M is a small pretrained model: the prompts give it a pattern to continue.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePorts, withTimeout } from './helpers.mjs';

const BIN = process.env.OPENLORA_BIN;
let proc;
let url;
let log = '';

before(async () => {
  assert.ok(BIN, 'set OPENLORA_BIN to the openlora binary (scripts/test.sh does)');
  const [port] = await freePorts(1);
  url = `http://127.0.0.1:${port}`;
  // No arguments: the default model path, served under its default name.
  proc = spawn(path.resolve(BIN), [], { env: { ...process.env, OPENLORA_PORT: String(port) } });
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  await withTimeout((async () => {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`openlora exited ${proc.exitCode}:\n${log}`);
      try {
        const r = await fetch(`${url}/health`);
        if (r.ok) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 200));
    }
  })(), 120_000, `openlora to answer /health\n${log}`);
});

after(() => proc?.kill('SIGINT'));

async function complete(body) {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

test('the default model knows the capital of Germany', async () => {
  const { status, body } = await complete({
    model: 'gemma-3-270m', prompt: 'The capital of France is Paris. The capital of Germany is',
    max_tokens: 8, temperature: 0,
  });
  assert.equal(status, 200, JSON.stringify(body));
  const text = body.choices[0].text;
  assert.match(text, /^ Berlin/, `greedy output was ${JSON.stringify(text)}`);
  assert.equal(body.usage.prompt_tokens, 13); // <bos> The ▁capital ▁of ▁France ▁is ▁Paris . ▁The …
  assert.equal(body.receipt.adapter_hash, null);
  assert.match(body.receipt.base_model_hash, /^0x[0-9a-f]{64}$/);
  assert.match(body.receipt.output_hash, /^0x[0-9a-f]{64}$/);
  assert.equal(body.receipt.output_tokens, body.usage.completion_tokens);
});

test('streaming yields the same greedy text', async () => {
  const req = { model: 'gemma-3-270m', prompt: 'One, two, three,', max_tokens: 10, temperature: 0 };
  const whole = (await complete(req)).body.choices[0].text;
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...req, stream: true }),
  });
  const events = (await r.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.equal(events.at(-1), '[DONE]');
  const streamed = events.slice(0, -1).map((e) => JSON.parse(e).choices[0].text).join('');
  assert.equal(streamed, whole);
  assert.match(whole, /four/i);
});

test('/v1/models lists the base model', async () => {
  const r = await (await fetch(`${url}/v1/models`)).json();
  assert.equal(r.data[0].id, 'gemma-3-270m');
  assert.equal(r.data[0].openlora.kind, 'base');
});
