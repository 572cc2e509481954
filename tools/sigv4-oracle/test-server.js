#!/usr/bin/env node
// An S3 test server that checks SigV4 signatures: s3rver (tools/s3rver) checks only that
// the access key exists, so this front re-signs every request with the AWS SDK for
// JavaScript's signer and refuses any whose signature (or payload hash) differs, then
// passes the request on to an in-process s3rver. Used by src/aws/s3_test.cc.
//
// Usage: node test-server.js <data dir> <bucket>[,<bucket>...] [--region R]
// Prints "ready <front port> <s3rver port>" once both listen on 127.0.0.1 (ports chosen
// by the kernel) and exits when its stdin closes, so it never outlives the test.
// Credentials: S3RVER / S3RVER (s3rver's default account). Access key EXPIRED answers
// 400 ExpiredToken; a request signed for another region than --region (default
// us-east-1) answers 400 AuthorizationHeaderMalformed with x-amz-bucket-region, as S3 does.
'use strict'

const http = require('http')
const path = require('path')
const crypto = require('crypto')
const { SignatureV4 } = require('@smithy/signature-v4')
const { Sha256 } = require('@aws-crypto/sha256-js')
const S3rver = require(path.join(__dirname, '..', 's3rver', 'node_modules', 's3rver'))

const SECRETS = { S3RVER: 'S3RVER' }
const args = process.argv.slice(2)
const dataDir = args[0]
const buckets = (args[1] || '').split(',').filter((b) => b !== '')
const regionIndex = args.indexOf('--region')
const bucketRegion = regionIndex > 0 ? args[regionIndex + 1] : 'us-east-1'

function xmlError (res, status, code, message, extraHeaders = {}) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...extraHeaders })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

async function verify (req, body) {
  const auth = req.headers.authorization
  if (!auth) return { status: 403, code: 'AccessDenied', message: 'unsigned request' }
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth)
  if (!m) return { status: 400, code: 'AuthorizationHeaderMalformed', message: 'malformed Authorization' }
  const [, accessKeyId, , region, service, signedHeaders, signature] = m
  if (accessKeyId === 'EXPIRED') return { status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' }
  const secret = SECRETS[accessKeyId]
  if (secret === undefined) return { status: 403, code: 'InvalidAccessKeyId', message: 'unknown access key' }
  if (region !== bucketRegion) {
    return { status: 400, code: 'AuthorizationHeaderMalformed', message: `the region '${region}' is wrong; expecting '${bucketRegion}'`, headers: { 'x-amz-bucket-region': bucketRegion } }
  }
  const contentHash = req.headers['x-amz-content-sha256']
  if (contentHash === undefined) return { status: 400, code: 'InvalidRequest', message: 'missing x-amz-content-sha256' }
  if (contentHash !== 'UNSIGNED-PAYLOAD' && crypto.createHash('sha256').update(body).digest('hex') !== contentHash) {
    return { status: 400, code: 'XAmzContentSHA256Mismatch', message: 'payload hash mismatch' }
  }
  const headers = {}
  for (const name of signedHeaders.split(';')) {
    if (req.headers[name] === undefined) return { status: 403, code: 'SignatureDoesNotMatch', message: `signed header ${name} missing` }
    headers[name] = req.headers[name]
  }
  const q = req.url.indexOf('?')
  const query = {}
  if (q >= 0) {
    for (const part of req.url.slice(q + 1).split('&')) {
      if (part === '') continue
      const eq = part.indexOf('=')
      const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq))
      const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1))
      query[k] = k in query ? [].concat(query[k], v) : v
    }
  }
  const amzDate = req.headers['x-amz-date'] || ''
  const date = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`)
  const signer = new SignatureV4({
    service,
    region,
    sha256: Sha256,
    credentials: { accessKeyId, secretAccessKey: secret, sessionToken: req.headers['x-amz-security-token'] },
    uriEscapePath: service !== 's3',
    applyChecksum: true
  })
  const signed = await signer.sign({
    method: req.method,
    protocol: 'http:',
    hostname: req.headers.host,
    path: q >= 0 ? req.url.slice(0, q) : req.url,
    query,
    headers
  }, { signingDate: date })
  const expected = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization)[1]
  if (expected !== signature) {
    return { status: 403, code: 'SignatureDoesNotMatch', message: `expected ${signed.headers.authorization}` }
  }
  return null
}

async function main () {
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dataDir,
    configureBuckets: buckets.map((name) => ({ name }))
  })
  const { port: upstreamPort } = await s3rver.run()

  const front = http.createServer((req, res) => {
    const chunks = []
    // Bodies are small test uploads; downloads stream through untouched below.
    req.on('data', (c) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      let problem
      try {
        problem = await verify(req, body)
      } catch (e) {
        problem = { status: 500, code: 'InternalError', message: String(e) }
      }
      if (problem) {
        process.stderr.write(`test-server: ${req.method} ${req.url}: ${problem.code} ${problem.message}\n`)
        xmlError(res, problem.status, problem.code, problem.message, problem.headers)
        return
      }
      const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode, upRes.headers)
        upRes.pipe(res)
      })
      up.on('error', (e) => { res.destroy(e) })
      up.end(body)
    })
  })
  front.listen(0, '127.0.0.1', () => {
    process.stdout.write(`ready ${front.address().port} ${upstreamPort}\n`)
  })
  // The test holds our stdin; when it goes away (even killed), so do we.
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()
}

main().catch((e) => { process.stderr.write(`test-server: ${e.stack || e}\n`); process.exit(2) })
