// pubsub authorization through the official client. The component's policies (see the
// driver's recipe) allow publishing to auth/allowed, auth/glob/* and auth/any/*, and
// subscribing to auth/sub/allowed, the literal filters auth/lit/+/x and auth/lit/#,
// auth/esc/${*} (a literal star) and auth/any/*. auth/later is allowed only after the
// driver deploys a new accessControl.
'use strict';
const L = require('./lib');
const { connect, record, attempt, publishJson, waitUntil } = L;

L.run(async () => {
  const c = await connect();
  const pub = (topic) => attempt(() => publishJson(c, topic, { topic }));
  const sub = async (topic) => {
    const r = await attempt(() => L.subscribe(c, topic));
    if (r.ok) { await r.value.op.close(); return { ok: true }; }
    return r;
  };
  record('publish', {
    allowed: await pub('auth/allowed'),
    denied: await pub('auth/denied'),
    after_denied: await pub('auth/allowed'),
    glob_deep: await pub('auth/glob/a/b/c'),
    glob_empty: await pub('auth/glob/'),
    glob_prefix_only: await pub('auth/globx'),
    literal_plus_level: await pub('auth/lit/a/x'),
    any_operation: await pub('auth/any/1'),
    subscribe_only: await pub('auth/sub/allowed'),
  });
  record('subscribe', {
    allowed: await sub('auth/sub/allowed'),
    denied: await sub('auth/sub/denied'),
    after_denied: await sub('auth/sub/allowed'),
    literal_plus: await sub('auth/lit/+/x'),
    plus_as_level: await sub('auth/lit/a/x'),
    literal_hash: await sub('auth/lit/#'),
    hash_as_levels: await sub('auth/lit/a'),
    escaped_star: await sub('auth/esc/*'),
    escaped_star_other: await sub('auth/esc/a'),
    any_operation: await sub('auth/any/+'),
    publish_only: await sub('auth/allowed'),
  });
  // Denied and allowed on one connection, interleaved: delivery still works.
  const s = await L.subscribe(c, 'auth/sub/allowed');
  const denied = await pub('auth/sub/allowed');
  const d2 = await sub('auth/denied');
  const later = await attempt(() => L.subscribe(c, 'auth/any/x'));
  const ok = await pub('auth/any/x');
  const got = later.ok && await waitUntil(() => later.value.events.length >= 1, 5000);
  record('same_connection', { denied, d2, subscribed: later.ok, ok, got, stray: s.events.length });

  // Until the driver's second deployment, auth/later is denied; then allowed, on this
  // same connection.
  const first = await pub('auth/later');
  record('before_redeploy', { first });
  let denials = 0;
  let last = first;
  const allowed = await waitUntil(async () => {
    last = await pub('auth/later');
    if (!last.ok) denials++;
    return last.ok;
  }, 30000, 100);
  record('after_redeploy', { allowed, last, denials, still_denied: await pub('auth/denied') });
  await c.close();
});
