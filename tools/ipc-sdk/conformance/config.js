// GetConfiguration, UpdateConfiguration and SubscribeToConfigurationUpdate through the
// official client. The driver deploys a MERGE and then a RESET while this runs; the
// events they cause are recorded too. The component's default configuration is
// {a: {b: 1, leaf: "x"}, n: 5}; the other component's is {shared: {k: "v"}}.
'use strict';
const L = require('./lib');
const { connect, record, attempt, waitUntil } = L;

const OTHER = process.env.LICHEN_SDK_OTHER || 'lichen.sdk.ConfigOther';

async function watch(client, request) {
  const op = client.subscribeToConfigurationUpdate(request);
  const w = { events: [], errors: [] };
  op.on('message', (m) => w.events.push(m.configurationUpdateEvent));
  op.on('streamError', (e) => w.errors.push(L.describeError(e)));
  w.response = await attempt(() => op.activate());
  return w;
}

L.run(async () => {
  const c = await connect();
  const get = (request) => attempt(() => c.getConfiguration(request));

  record('get', {
    whole: await get({ keyPath: [] }),
    nested: await get({ keyPath: ['a'] }),
    leaf: await get({ keyPath: ['a', 'leaf'] }),
    other: await get({ componentName: OTHER, keyPath: ['shared'] }),
    missing: await get({ keyPath: ['nope'] }),
    missing_below_leaf: await get({ keyPath: ['a', 'leaf', 'deeper'] }),
    missing_component: await get({ componentName: 'lichen.sdk.NoSuchComponent', keyPath: [] }),
  });

  const onA = await watch(c, { keyPath: ['a'] });
  const onN = await watch(c, { keyPath: ['n'] });
  const onOther = await watch(c, { componentName: OTHER, keyPath: ['shared'] });
  record('subscribed', { a: onA.response, n: onN.response, other: onOther.response });

  // Our own update: merged, seen by the subscription on `a` only.
  const now = Date.now();
  const update = await attempt(() => c.updateConfiguration({
    keyPath: ['a'], timestamp: new Date(now), valueToMerge: { b: 2, c: 'new' },
  }));
  await waitUntil(() => onA.events.length >= 2, 5000);
  record('update_own', {
    update, after: await get({ keyPath: ['a'] }), events: onA.events.slice(), n_events: onN.events.slice(),
  });

  // Older than what is stored: refused, nothing changes.
  const older = await attempt(() => c.updateConfiguration({
    keyPath: ['a'], timestamp: new Date(now - 3600 * 1000), valueToMerge: { b: 99 },
  }));
  const olderLeaf = await attempt(() => c.updateConfiguration({
    keyPath: ['a', 'b'], timestamp: new Date(now - 3600 * 1000), valueToMerge: 98,
  }));
  record('update_older', { older, older_leaf: olderLeaf, after: await get({ keyPath: ['a', 'b'] }) });

  // accessControl belongs to deployments.
  const acl = { 'aws.greengrass.ipc.pubsub': { p: { operations: ['*'], resources: ['*'] } } };
  record('update_acl', {
    under: await attempt(() => c.updateConfiguration({
      keyPath: ['accessControl'], timestamp: new Date(), valueToMerge: acl,
    })),
    top: await attempt(() => c.updateConfiguration({
      keyPath: [], timestamp: new Date(), valueToMerge: { accessControl: acl },
    })),
    after: await get({ keyPath: [] }),
  });

  // The driver now deploys MERGE {a: {fromDeploy: 1}, n: 6} and a MERGE for the other
  // component, then a RESET of /a/b.
  const base = onA.events.length;
  record('ready_for_deploy', { a_events: base });
  const merged = await waitUntil(() => onA.events.slice(base).some((e) => e.keyPath.includes('fromDeploy')) &&
    onN.events.length >= 1 && onOther.events.length >= 1, 30000);
  record('deploy_merge', {
    merged, a: onA.events.slice(base), n: onN.events.slice(), other: onOther.events.slice(),
    value: await get({ keyPath: [] }),
  });
  const base2 = onA.events.length;
  record('ready_for_reset', {});
  const reset = await waitUntil(() => onA.events.slice(base2).some((e) => e.keyPath.join('/') === 'a/b'), 30000);
  record('deploy_reset', {
    reset, a: onA.events.slice(base2), value: await get({ keyPath: ['a', 'b'] }),
    stream_errors: onA.errors.concat(onN.errors, onOther.errors),
  });
  await c.close();
});
