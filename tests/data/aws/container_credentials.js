// Runs as a Lichen component: asks the AWS SDK for JavaScript's container credential
// provider (what the SDK's default chain uses in a Greengrass component) for credentials.
// It reads AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN, which
// the nucleus sets. Prints the key id and the secret's length, never the secret.
const path = require('path');
const { fromContainerMetadata } = require(
  path.join(__dirname, '../../../tools/aws-credentials-js/node_modules/@aws-sdk/credential-providers'));

(async () => {
  try {
    const credentials = await fromContainerMetadata({ timeout: 5000, maxRetries: 1 })();
    console.log(`credentials: accessKeyId=${credentials.accessKeyId} ` +
                `secretLength=${credentials.secretAccessKey.length}`);
  } catch (e) {
    console.log(`credentials failed: ${e.name}: ${e.message}`);
    process.exit(1);
  }
})();
