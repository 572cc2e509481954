// Many concurrent connections from one component: LICHEN_SDK_CLIENTS clients connect at
// once, each subscribes to a shared topic and to its own, then each publishes once to the
// shared topic and once to the next client's topic. Every client must get every shared
// message and exactly one direct message.
'use strict';
const L = require('./lib');
const { connect, record, attempt, waitUntil } = L;

const N = Number(process.env.LICHEN_SDK_CLIENTS || 50);

L.run(async () => {
  const started = Date.now();
  const conns = await Promise.all(Array.from({ length: N }, () => attempt(connect)));
  const clients = conns.filter((r) => r.ok).map((r) => r.value);
  record('connected', { wanted: N, connected: clients.length, failures: conns.filter((r) => !r.ok).slice(0, 3) });
  const subs = await Promise.all(clients.map(async (c, i) => ({
    shared: await attempt(() => L.subscribe(c, 'many/all')),
    own: await attempt(() => L.subscribe(c, 'many/direct/' + i)),
  })));
  const subscribed = subs.filter((s) => s.shared.ok && s.own.ok).length;
  const publishes = await Promise.all(clients.map(async (c, i) => [
    await attempt(() => L.publishJson(c, 'many/all', { from: i })),
    await attempt(() => L.publishJson(c, 'many/direct/' + ((i + 1) % clients.length), { from: i })),
  ]));
  const failedPublishes = publishes.flat().filter((r) => !r.ok);
  const n = clients.length;
  const complete = await waitUntil(() => subs.every((s) => s.shared.ok && s.own.ok &&
    s.shared.value.events.length >= n && s.own.value.events.length >= 1), 20000, 20);
  const counts = subs.map((s) => [s.shared.ok ? s.shared.value.events.length : -1, s.own.ok ? s.own.value.events.length : -1]);
  // Direct messages come from the previous client; shared ones from every client once.
  const wrongSender = subs.filter((s, i) => s.own.ok && s.own.value.events.some(
    (e) => e.jsonMessage.message.from !== (i + n - 1) % n)).length;
  const duplicates = subs.filter((s) => s.shared.ok &&
    new Set(s.shared.value.events.map((e) => e.jsonMessage.message.from)).size !== s.shared.value.events.length).length;
  record('exchanged', {
    subscribed, failed_publishes: failedPublishes.slice(0, 3), failed_publish_count: failedPublishes.length,
    complete, bad_counts: counts.filter(([s, o]) => s !== n || o !== 1).slice(0, 5), wrong_sender: wrongSender,
    duplicates, ms: Date.now() - started,
  });
  await Promise.all(clients.map((c) => attempt(() => c.close())));
});
