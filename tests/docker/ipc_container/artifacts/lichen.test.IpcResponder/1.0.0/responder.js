// A host component: answers every message on the request topic with "pong:<message>" on
// the reply topic, using the official IPC client (aws-iot-device-sdk-v2).
'use strict';
const { greengrasscoreipc } = require('aws-iot-device-sdk-v2');

const [requestTopic, replyTopic] = process.argv.slice(2);

async function main() {
  const client = greengrasscoreipc.createClient();
  await client.connect();
  const stream = client.subscribeToTopic({ topic: requestTopic });
  stream.on('message', (event) => {
    const text = Buffer.from(event.binaryMessage.message).toString('utf8');
    console.log(`responder got: ${text}`);
    client
      .publishToTopic({
        topic: replyTopic,
        publishMessage: { binaryMessage: { message: Buffer.from(`pong:${text}`) } },
      })
      .catch((e) => console.error(`responder publish failed: ${e}`));
  });
  await stream.activate();
  console.log(`responder subscribed to ${requestTopic}`);
}

process.on('SIGTERM', () => process.exit(0));
// The IPC connection keeps node alive; this bounds a responder whose nucleus went away.
setTimeout(() => process.exit(0), 10 * 60 * 1000);
main().catch((e) => {
  console.error(`responder failed: ${e}`);
  process.exit(1);
});
