// Runs INSIDE a Docker container: publishes a request until the host responder answers
// on the reply topic, then stays up (as a containerized service would) until stopped.
'use strict';
const fs = require('fs');
const { greengrasscoreipc } = require('aws-iot-device-sdk-v2');

const [requestTopic, replyTopic] = process.argv.slice(2);
// /.dockerenv exists only inside a Docker container: proof of where this runs.
console.log(`client in container: ${fs.existsSync('/.dockerenv')}`);

async function main() {
  const client = greengrasscoreipc.createClient();
  await client.connect();
  let answered = false;
  const stream = client.subscribeToTopic({ topic: replyTopic });
  stream.on('message', (event) => {
    const text = Buffer.from(event.binaryMessage.message).toString('utf8');
    if (!answered) console.log(`container received: ${text}`);
    answered = true;
  });
  await stream.activate();
  // The responder may not have subscribed yet: repeat the request, a bounded number
  // of times, until it answers.
  for (let i = 0; i < 100 && !answered; i++) {
    await client.publishToTopic({
      topic: requestTopic,
      publishMessage: { binaryMessage: { message: Buffer.from('hello from container') } },
    });
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!answered) throw new Error('no reply from the responder');
}

// Node as PID 1 of the container has no default SIGTERM action: exit explicitly so that
// stopping the component (docker run proxies the signal) ends the container.
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(0), 10 * 60 * 1000);
main().catch((e) => {
  console.error(`client failed: ${e}`);
  process.exit(1);
});
