// PublishToTopic throughput through the official JavaScript IPC client
// (aws-iot-device-sdk-v2 greengrasscoreipc, pinned in tools/ipc-sdk), with a bounded
// number of requests in flight through the SDK's promise API.
//
//   node bench/ipc_js_bench.js --socket PATH [--messages N] [--inflight N] [--runs N]
//                              [--subscribers N]
//
// Run it against `ipc_bench --serve-ack-only PATH` (the client's own ceiling: the server
// only acknowledges) and `ipc_bench --serve-pubsub PATH` (the real pubsub path). With
// --subscribers N, N more SDK clients, each on its own connection, subscribe to the topic
// and the run ends when every one has every message (the subscribers run in this same
// Node process, so they share its one JavaScript thread with the publisher).
// Authentication is what a component does: $SVCUID and
// $AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT (set here from --socket).
'use strict';

const path = require('path');
const sdk = require(path.join(__dirname, '..', 'tools', 'ipc-sdk', 'node_modules',
                              'aws-iot-device-sdk-v2'));
const { greengrasscoreipc } = sdk;

function parseArgs() {
  const o = { socket: '', messages: 20000, inflight: 64, runs: 5, subscribers: 0 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) || i + 1 >= argv.length) {
      console.error('usage: node ipc_js_bench.js --socket PATH [--messages N] [--inflight N] ' +
                    '[--runs N] [--subscribers N]');
      process.exit(2);
    }
    o[key] = key === 'socket' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!o.socket) {
    console.error('--socket is required');
    process.exit(2);
  }
  return o;
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function connect() {
  // createClient() reads both variables, as in a component.
  const client = greengrasscoreipc.createClient();
  await client.connect();
  return client;
}

async function main() {
  const o = parseArgs();
  process.env.AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT = o.socket;
  if (!process.env.SVCUID) process.env.SVCUID = 'benchbenchbench1';
  const topic = 'bench/t';

  let received = 0;
  let wanted = 0;
  let onAllReceived = null;
  const subscribers = [];
  for (let i = 0; i < o.subscribers; ++i) {
    const client = await connect();
    const op = client.subscribeToTopic({ topic });
    op.on('message', () => {
      if (++received === wanted && onAllReceived) onAllReceived();
    });
    await op.activate();
    subscribers.push(client);
  }
  const publisher = await connect();

  const rates = [];
  for (let run = 1; run <= o.runs; ++run) {
    received = 0;
    wanted = o.messages * o.subscribers;
    const allReceived = o.subscribers === 0 ? Promise.resolve()
                                            : new Promise((resolve) => { onAllReceived = resolve; });
    let next = 0;
    let failed = 0;
    // `inflight` workers, each awaiting its publish before sending the next: at most that
    // many requests are outstanding.
    const worker = async () => {
      while (next < o.messages) {
        const seq = next++;
        try {
          await publisher.publishToTopic({
            topic,
            publishMessage: { jsonMessage: { message: { s: seq, t: Date.now() } } },
          });
        } catch (e) {
          ++failed;
        }
      }
    };
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: o.inflight }, worker));
    const tAcked = process.hrtime.bigint();
    const timeout = new Promise((resolve) => setTimeout(resolve, 10000));
    await Promise.race([allReceived, timeout]);
    const tAll = process.hrtime.bigint();
    const secs = Number((o.subscribers ? tAll : tAcked) - t0) / 1e9;
    const rate = o.messages / secs;
    rates.push(rate);
    console.log(`run ${run}: ${o.messages} publishes, ${o.inflight} in flight, ` +
                `${o.subscribers} subscribers: ${rate.toFixed(0)} msg/s ` +
                `(acked at ${(o.messages / (Number(tAcked - t0) / 1e9)).toFixed(0)} msg/s), ` +
                `failed ${failed}, lost ${wanted - received}`);
  }
  console.log(`SUMMARY msg/s median ${median(rates).toFixed(0)} ` +
              `(${Math.min(...rates).toFixed(0)}-${Math.max(...rates).toFixed(0)})`);
  publisher.close();
  for (const c of subscribers) c.close();
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
