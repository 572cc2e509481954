// PublishToIoTCore, SubscribeToIoTCore and GetSecretValue through the official client
// on a device without a cloud connection: allowed calls get a ServiceError saying so,
// calls outside the policies an UnauthorizedError, and the connection keeps working.
'use strict';
const L = require('./lib');
const { connect, record, attempt } = L;

L.run(async () => {
  const c = await connect();
  const publish = (topicName) => attempt(() => c.publishToIoTCore({ topicName, qos: '1', payload: Buffer.from('hi') }));
  const subscribe = (topicName) => attempt(async () => {
    const op = c.subscribeToIoTCore({ topicName, qos: '0' });
    return op.activate();
  });
  const secret = (secretId) => attempt(() => c.getSecretValue({ secretId }));
  record('allowed', {
    publish: await publish('cloud/ok'),
    subscribe: await subscribe('cloud/ok'),
    secret: await secret('arn:aws:secretsmanager:us-west-2:123456789012:secret:ok'),
  });
  record('denied', {
    publish: await publish('cloud/no'),
    subscribe: await subscribe('cloud/no'),
    secret: await secret('arn:aws:secretsmanager:us-west-2:123456789012:secret:no'),
  });
  record('after', { publish: await publish('cloud/ok'), local: await attempt(() => L.publishJson(c, 'cloud/local', { x: 1 })) });
  await c.close();
});
