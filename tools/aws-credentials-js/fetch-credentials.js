// Fetches credentials from the token exchange service the way a component's AWS SDK
// does: AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN from the
// environment. Prints {provider: credentials} as JSON; exits 1 on any failure.
// Usage: node fetch-credentials.js [containerMetadata|http|chain ...] (default: all)
"use strict";
const {
  fromContainerMetadata,
  fromHttp,
  fromNodeProviderChain,
} = require("@aws-sdk/credential-providers");

const providers = {
  containerMetadata: () => fromContainerMetadata({ timeout: 5000, maxRetries: 0 }),
  http: () => fromHttp({ timeout: 5000, maxRetries: 0 }),
  chain: () => fromNodeProviderChain({ timeout: 5000, maxRetries: 0 }),
};

(async () => {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(providers);
  const out = {};
  for (const name of names) {
    const c = await providers[name]()();
    out[name] = {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: c.expiration ? c.expiration.toISOString() : null,
    };
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
});
