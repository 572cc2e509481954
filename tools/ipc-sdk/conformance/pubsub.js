// PublishToTopic / SubscribeToTopic through the official client: JSON and binary
// messages, `+` and `#` filters, both receive modes and their defaults, events only after
// the subscribe response, closing a stream, closing a connection, wildcard publish topics.
'use strict';
const L = require('./lib');
const { connect, record, attempt, subscribe, eventSummary, publishJson, publishBinary, waitUntil } = L;

const ALL = 'RECEIVE_ALL_MESSAGES';
const OTHERS = 'RECEIVE_MESSAGES_FROM_OTHERS';

L.run(async () => {
  const a = await connect();
  const b = await connect();  // a second connection of the same component
  const summaries = (sub) => sub.events.map(eventSummary);

  // The peer component (peer.js) republishes what we send to sdk/ctl/peer. It may start
  // after us: ask until it answers.
  const pong = await subscribe(a, 'sdk/ctl/pong');
  const peer = (topic, message) => publishJson(a, 'sdk/ctl/peer', { topic, message });
  const peerUp = await waitUntil(async () => {
    if (pong.events.length > 0) return true;
    await peer('sdk/ctl/pong', { hi: 1 });
    return false;
  }, 20000, 100);
  record('peer_ready', { ok: peerUp });

  // JSON round trip, exact topic.
  {
    const sub = await subscribe(a, 'sdk/a/json');
    const message = { text: 'h\u00e9llo', n: 42, nested: { list: [1, 'two', null, true] } };
    const publish = await attempt(() => publishJson(a, 'sdk/a/json', message));
    await waitUntil(() => sub.events.length >= 1, 5000);
    record('json', { publish, events: summaries(sub), sent: message });
  }

  // Binary round trip: every byte value.
  {
    const sub = await subscribe(a, 'sdk/a/bin');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const publish = await attempt(() => publishBinary(a, 'sdk/a/bin', bytes));
    await waitUntil(() => sub.events.length >= 1, 5000);
    record('binary', { publish, events: summaries(sub), sent: bytes.toString('base64') });
  }

  // `+` is exactly one level. The last publish matches: once it arrives, every earlier
  // event of this stream has arrived too (one connection keeps order).
  {
    const sub = await subscribe(a, 'sdk/+/p', ALL);
    for (const t of ['sdk/x/p', 'sdk/x/y/p', 'sdk/p', 'sdk/x/p/q', 'sdk/z/p']) {
      await publishJson(a, t, { t });
    }
    await waitUntil(() => sub.events.some((e) => e.jsonMessage.context.topic === 'sdk/z/p'), 5000);
    record('plus', { topics: summaries(sub).map((e) => e.topic) });
  }

  // `#` is one or more trailing levels.
  {
    const sub = await subscribe(a, 'sdk/h/#', ALL);
    for (const t of ['sdk/h/1', 'sdk/h/1/2', 'sdk/h', 'sdk/hx/1', 'other/h/1', 'sdk/h/end']) {
      await publishJson(a, t, { t });
    }
    await waitUntil(() => sub.events.some((e) => e.jsonMessage.context.topic === 'sdk/h/end'), 5000);
    record('hash', { topics: summaries(sub).map((e) => e.topic) });
  }

  // Receive modes. Our own message goes out first (over the second connection: the mode
  // is about the component, not the connection), then the peer's; when the peer's has
  // arrived everywhere, ours would have arrived before it.
  {
    const wildDefault = await subscribe(a, 'sdk/d/+');
    const exactDefault = await subscribe(a, 'sdk/d/exact');
    const exactOthers = await subscribe(a, 'sdk/d/exact', OTHERS);
    const wildAll = await subscribe(a, 'sdk/d/+', ALL);
    const self = await attempt(() => publishJson(b, 'sdk/d/exact', { from: 'self' }));
    await peer('sdk/d/exact', { from: 'peer' });
    const got = await waitUntil(() => wildDefault.events.length >= 1 && exactOthers.events.length >= 1 &&
      exactDefault.events.length >= 2 && wildAll.events.length >= 2, 5000);
    const froms = (sub) => sub.events.map((e) => e.jsonMessage.message.from);
    record('modes', {
      self, got,
      wildcard_default: froms(wildDefault),
      exact_default: froms(exactDefault),
      exact_others: froms(exactOthers),
      wildcard_all: froms(wildAll),
    });
  }

  // Events only after the response: the client takes the first message of a stream as
  // the response and rejects activate() if it is an event. Subscribe many times while
  // the topic is flooded from another connection.
  {
    let flooding = true;
    let floodCount = 0;
    const floodErrors = [];
    const flooders = Array.from({ length: 4 }, async () => {
      while (flooding) {
        const r = await attempt(() => publishJson(b, 'sdk/flood', { n: floodCount }));
        if (r.ok) floodCount++; else floodErrors.push(r);
      }
    });
    await waitUntil(() => floodCount >= 20, 5000);  // the flood is under way
    const results = await Promise.all(Array.from({ length: 25 }, () => attempt(() => subscribe(a, 'sdk/flood'))));
    const subs = results.filter((r) => r.ok).map((r) => r.value);
    const allGot = await waitUntil(() => subs.every((s) => s.events.length > 0), 5000);
    flooding = false;
    await Promise.all(flooders);
    record('events_after_response', {
      subscribed: subs.length,
      failures: results.filter((r) => !r.ok),
      stream_errors: subs.flatMap((s) => s.errors),
      all_received: allGot,
      flood_published: floodCount,
      flood_errors: floodErrors.slice(0, 3),
    });
    await Promise.all(subs.map((s) => s.op.close()));
  }

  // Closing the stream from the client unsubscribes it.
  {
    const closing = await subscribe(a, 'sdk/close');
    const control = await subscribe(b, 'sdk/close');
    await publishJson(b, 'sdk/close', { n: 1 });
    await waitUntil(() => closing.events.length >= 1 && control.events.length >= 1, 5000);
    await closing.op.close();
    // Published on the closing connection: the server reads the close first.
    const after = await attempt(() => publishJson(a, 'sdk/close', { n: 2 }));
    await waitUntil(() => control.events.length >= 2, 5000);
    // A new stream on the same connection works after the close.
    const again = await subscribe(a, 'sdk/close');
    await publishJson(b, 'sdk/close', { n: 3 });
    await waitUntil(() => again.events.length >= 1 && control.events.length >= 3, 5000);
    const ns = (sub) => sub.events.map((e) => e.jsonMessage.message.n);
    record('stream_close', { after, closed: ns(closing), control: ns(control), reopened: ns(again) });
  }

  // Closing a connection ends its subscriptions; the others carry on.
  {
    const c = await connect();
    const gone = await subscribe(c, 'sdk/disc');
    const control = await subscribe(a, 'sdk/disc');
    await publishJson(a, 'sdk/disc', { n: 1 });
    await waitUntil(() => gone.events.length >= 1 && control.events.length >= 1, 5000);
    await c.close();
    const after = await attempt(() => publishJson(a, 'sdk/disc', { n: 2 }));
    await waitUntil(() => control.events.length >= 2, 5000);
    const ns = (sub) => sub.events.map((e) => e.jsonMessage.message.n);
    record('disconnect', { after, gone: ns(gone), control: ns(control) });
  }

  // Wildcards are not publish topics; the connection keeps working.
  {
    const plus = await attempt(() => publishJson(a, 'sdk/+/x', { bad: 1 }));
    const hash = await attempt(() => publishJson(a, 'sdk/#', { bad: 1 }));
    const star = await attempt(() => publishJson(a, 'sdk/*', { bad: 1 }));
    const still = await attempt(() => publishJson(a, 'sdk/fine', { ok: 1 }));
    record('wildcard_publish', { plus, hash, star, still });
  }
  await a.close();
  await b.close();
});
