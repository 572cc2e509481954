#!/usr/bin/env node
// The reference side of Lichen's SigV4 oracle test (src/aws/sigv4_test.cc): signs each
// request with the AWS SDK for JavaScript's signer (@smithy/signature-v4, pinned in
// package.json) configured the way the SDK's own clients configure it.
// Input (file named by argv[2]): one JSON object per line:
//   {"method","host","path" (unencoded),"query":[[name,value],...],"headers":[[name,value],...],
//    "region","service","time" (epoch seconds),"accessKeyId","secretAccessKey","sessionToken",
//    "body" (hex, absent = no body),"unsignedPayload" (bool)}
// Output: "signature-v4 <version>", then per request its Authorization header, then "end <n>".
'use strict'

const fs = require('fs')
const path = require('path')
const { SignatureV4 } = require('@smithy/signature-v4')
const { Sha256 } = require('@aws-crypto/sha256-js')
const { escapeUriPath } = require('@smithy/util-uri-escape')

async function sign (r) {
  const s3 = r.service === 's3'
  const signer = new SignatureV4({
    service: r.service,
    region: r.region,
    sha256: Sha256,
    credentials: {
      accessKeyId: r.accessKeyId,
      secretAccessKey: r.secretAccessKey,
      sessionToken: r.sessionToken || undefined
    },
    // What the S3 client passes: the key is encoded once by the serializer, not again.
    uriEscapePath: !s3,
    applyChecksum: s3
  })
  const query = {}
  for (const [k, v] of r.query || []) {
    if (k in query) {
      query[k] = [].concat(query[k], v)
    } else {
      query[k] = v
    }
  }
  const headers = { host: r.host }
  for (const [k, v] of r.headers || []) {
    headers[k] = k in headers ? `${headers[k]},${v}` : v
  }
  if (r.unsignedPayload) {
    headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'
  }
  const request = {
    method: r.method,
    protocol: 'https:',
    hostname: r.host,
    path: escapeUriPath(r.path),
    query,
    headers,
    body: r.body === undefined ? undefined : Buffer.from(r.body, 'hex')
  }
  const signed = await signer.sign(request, { signingDate: new Date(r.time * 1000) })
  return signed.headers.authorization
}

async function main () {
  const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l !== '')
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', '@smithy', 'signature-v4', 'package.json'), 'utf8'))
  const out = [`signature-v4 ${pkg.version}`]
  for (const line of lines) {
    out.push(await sign(JSON.parse(line)))
  }
  out.push(`end ${lines.length}`)
  process.stdout.write(out.join('\n') + '\n')
}

main().catch((e) => { process.stderr.write(`oracle: ${e.stack || e}\n`); process.exit(2) })
