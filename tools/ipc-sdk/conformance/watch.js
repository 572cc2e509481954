// What the official client sees when the server end goes away: the driver kills the
// nucleus (kill -9, so this component keeps running) once `ready` is recorded; the
// connection's disconnection event and the open stream's end must follow.
'use strict';
const L = require('./lib');
const { connect, record, waitUntil } = L;

L.run(async () => {
  const c = await connect();
  let disconnected = null;
  c.on('disconnection', (e) => { disconnected = { reason: e && e.reason ? String(e.reason) : null }; });
  const sub = await L.subscribe(c, 'sdk/watch');
  record('ready', {});
  const seen = await waitUntil(() => disconnected !== null && sub.ended, 30000, 10);
  record('server_gone', { seen, disconnected, stream_ended: sub.ended });
  const again = await L.attempt(() => L.publishJson(c, 'sdk/watch', { late: 1 }));
  record('call_after', again);
});
