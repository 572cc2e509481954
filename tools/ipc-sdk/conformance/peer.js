// A second component for pubsub.js: it publishes, under its own identity, whatever it is
// asked to on sdk/ctl/peer ({topic, message}), so receive modes can tell "own" from
// "other" messages.
'use strict';
const { connect, record, attempt, publishJson, run } = require('./lib');

run(async () => {
  const client = await connect();
  const ctl = client.subscribeToTopic({ topic: 'sdk/ctl/peer' });
  ctl.on('message', async (m) => {
    const req = m.jsonMessage && m.jsonMessage.message;
    if (!req || !req.topic) return;
    const r = await attempt(() => publishJson(client, req.topic, req.message));
    if (!r.ok) record('peer_publish_failed', r);
  });
  await ctl.activate();
  record('ready', {});
  await new Promise(() => {});  // serves until the component is stopped
});
