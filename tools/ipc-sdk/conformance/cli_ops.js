// GetComponentDetails, ListComponents, RestartComponent and StopComponent on another
// component (LICHEN_SDK_TARGET) through the official client. LICHEN_SDK_MODE=admin runs
// with an aws.greengrass.Cli policy naming the target and lichen.sdk.Missing;
// LICHEN_SDK_MODE=denied runs without any policy.
'use strict';
const L = require('./lib');
const { connect, record, attempt, waitUntil } = L;

const mode = process.env.LICHEN_SDK_MODE || 'admin';
const target = process.env.LICHEN_SDK_TARGET || 'lichen.sdk.Target';
const unlisted = process.env.LICHEN_SDK_UNLISTED || 'lichen.sdk.CliDenied';

L.run(async () => {
  const c = await connect();
  const details = (componentName) => attempt(() => c.getComponentDetails({ componentName }));
  if (mode === 'denied') {
    record('denied', {
      list: await attempt(() => c.listComponents({})),
      details: await details(target),
      restart: await attempt(() => c.restartComponent({ componentName: target })),
      stop: await attempt(() => c.stopComponent({ componentName: target })),
    });
    // The connection still works for what needs no policy.
    record('denied_then', { config: await attempt(() => c.getConfiguration({ keyPath: [] })) });
    await c.close();
    return;
  }
  record('read', {
    list: await attempt(() => c.listComponents({})),
    details: await details(target),
    missing: await details('lichen.sdk.Missing'),
    empty: await details(''),
    unlisted: await details(unlisted),
  });
  record('errors', {
    restart_missing: await attempt(() => c.restartComponent({ componentName: 'lichen.sdk.Missing' })),
    stop_missing: await attempt(() => c.stopComponent({ componentName: 'lichen.sdk.Missing' })),
    restart_empty: await attempt(() => c.restartComponent({ componentName: '' })),
    stop_empty: await attempt(() => c.stopComponent({ componentName: '' })),
    restart_unlisted: await attempt(() => c.restartComponent({ componentName: unlisted })),
    stop_unlisted: await attempt(() => c.stopComponent({ componentName: unlisted })),
  });
  // The driver compares the target's process before and after.
  record('ready_for_restart', {});
  const restart = await attempt(() => c.restartComponent({ componentName: target }));
  record('restart', { restart });
  const state = async () => {
    const d = await details(target);
    return d.ok ? d.value.componentDetails.state : null;
  };
  const states = [];
  // The restart may already be over by the first poll: RUNNING is the end state either way.
  const back = await waitUntil(async () => { states.push(await state()); return states[states.length - 1] === 'RUNNING'; }, 15000, 50);
  record('restarted', { back, last: states[states.length - 1] });
  const stop = await attempt(() => c.stopComponent({ componentName: target }));
  const finished = await waitUntil(async () => (await state()) === 'FINISHED', 15000, 50);
  record('stop', { stop, finished, details: await details(target) });
  await c.close();
});
