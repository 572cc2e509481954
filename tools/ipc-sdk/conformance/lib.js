// Shared helpers for the conformance scripts. Each script runs as a Lichen component and
// appends one JSON line per check to results.jsonl in its working folder; the GoogleTest
// driver (tests/ipc_sdk_test.cc) reads that file. A script never decides pass/fail on
// its own: it records what the official client saw and the driver asserts on it.
'use strict';
const fs = require('fs');
const path = require('path');

const sdk = require(path.join(__dirname, '..', 'node_modules', 'aws-iot-device-sdk-v2'));
const ipc = sdk.greengrasscoreipc;
const model = ipc.model;

const RESULTS = process.env.LICHEN_SDK_RESULTS || path.join(process.cwd(), 'results.jsonl');

function record(check, data) {
  fs.appendFileSync(RESULTS, JSON.stringify(Object.assign({ check }, data || {})) + '\n');
}

// What a rejected promise carried: the modeled error code and message when the server
// sent one, else the client's own error category.
function describeError(e) {
  const se = e && e.serviceError;
  return {
    ok: false,
    code: se && se._errorCode ? se._errorCode : null,
    message: se && se.message !== undefined ? se.message : (e && (e.description || e.message)) || String(e),
    type: e && e.type !== undefined ? e.type : null,
  };
}

async function attempt(fn) {
  try {
    const value = await fn();
    return { ok: true, value: value === undefined ? null : value };
  } catch (e) {
    return describeError(e);
  }
}

async function connect() {
  const client = ipc.createClient();
  await client.connect();
  return client;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `pred` until it holds or `ms` passes; returns whether it held.
async function waitUntil(pred, ms, every = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(every);
  }
}

// A subscription whose events are collected in order (with the time they arrived).
async function subscribe(client, topic, receiveMode) {
  const request = { topic };
  if (receiveMode) request.receiveMode = receiveMode;
  const op = client.subscribeToTopic(request);
  const sub = { op, topic, events: [], errors: [], ended: false };
  op.on('message', (m) => sub.events.push(m));
  op.on('streamError', (e) => sub.errors.push(describeError(e)));
  op.on('ended', () => { sub.ended = true; });
  await op.activate();
  return sub;
}

// An event as plain JSON: {kind, topic, message} (binary payloads as base64).
function eventSummary(m) {
  if (m.jsonMessage) {
    return { kind: 'json', topic: m.jsonMessage.context && m.jsonMessage.context.topic, message: m.jsonMessage.message };
  }
  if (m.binaryMessage) {
    const payload = Buffer.from(m.binaryMessage.message);
    return { kind: 'binary', topic: m.binaryMessage.context && m.binaryMessage.context.topic, message: payload.toString('base64') };
  }
  return { kind: 'other', raw: m };
}

function publishJson(client, topic, message) {
  return client.publishToTopic({ topic, publishMessage: { jsonMessage: { message } } });
}

function publishBinary(client, topic, bytes) {
  return client.publishToTopic({ topic, publishMessage: { binaryMessage: { message: bytes } } });
}

// Runs `main`, records an uncaught failure as its own line, and always ends with a
// `done` line so the driver can stop waiting. The process then stays or exits as asked.
function run(main, { stayAlive = false } = {}) {
  main()
    .catch((e) => record('uncaught', describeError(e)))
    .finally(() => {
      record('done', {});
      if (stayAlive) setInterval(() => {}, 1 << 30);
      else process.exit(0);
    });
}

module.exports = {
  ipc, model, record, describeError, attempt, connect, sleep, waitUntil, subscribe,
  eventSummary, publishJson, publishBinary, run,
};
