// A wrong SVCUID: the official client's connect() must be rejected. The client reads the
// token from the environment when it is created, so the real one is swapped out first
// and put back for a last connection that must succeed.
'use strict';
const L = require('./lib');
const { record, attempt } = L;

L.run(async () => {
  const real = process.env.SVCUID;
  const tryToken = async (token) => {
    process.env.SVCUID = token;
    const client = L.ipc.createClient();
    const r = await attempt(() => client.connect());
    const connected = r.ok;
    await attempt(() => client.close());
    return Object.assign(r, { connected });
  };
  record('bogus', await tryToken('not-the-svcuid-0'));
  record('same_length', await tryToken('AAAAAAAAAAAAAAAA'));
  record('real_with_suffix', await tryToken(real + 'x'));
  process.env.SVCUID = real;
  const client = L.ipc.createClient();
  const ok = await attempt(() => client.connect());
  const call = ok.ok ? await attempt(() => client.getConfiguration({ keyPath: [] })) : null;
  record('real', { connect: ok, call });
  await attempt(() => client.close());
});
