// UpdateState through the official client. Two uses, chosen by LICHEN_SDK_MODE:
//  startup: this is the Startup step; it reports RUNNING (the component stays STARTING
//           until then) and keeps running.
//  run:     this is the Run step; it reports RUNNING (already RUNNING: accepted), then,
//           when the driver creates `go-errored` in the working folder, ERRORED. The
//           nucleus then restarts it; the second run only records that it started.
'use strict';
const fs = require('fs');
const L = require('./lib');
const { connect, record, attempt, waitUntil } = L;

const mode = process.env.LICHEN_SDK_MODE || 'run';

if (mode === 'startup') {
  L.run(async () => {
    const c = await connect();
    record('startup_started', {});
    // Let the driver see STARTING first: it creates `report` when it has.
    const asked = await waitUntil(() => fs.existsSync('report'), 30000, 20);
    record('report_running', { asked, result: await attempt(() => c.updateState({ state: 'RUNNING' })) });
  }, { stayAlive: true });
} else if (fs.existsSync('first-run-done')) {
  L.run(async () => {
    record('restarted', {});
  }, { stayAlive: true });
} else {
  L.run(async () => {
    const c = await connect();
    record('running', { result: await attempt(() => c.updateState({ state: 'RUNNING' })) });
    const asked = await waitUntil(() => fs.existsSync('go-errored'), 30000, 20);
    fs.writeFileSync('first-run-done', '');
    // The stop that follows ERRORED may end this process before the answer is read.
    record('reporting_errored', { asked });
    record('errored', { asked, result: await attempt(() => c.updateState({ state: 'ERRORED' })) });
    // Stay until the nucleus stops us for the restart.
    await new Promise(() => {});
  });
}
