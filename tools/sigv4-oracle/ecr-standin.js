#!/usr/bin/env node
// A local stand-in for the Amazon ECR API's GetAuthorizationToken (JSON 1.1 protocol), for
// tests of Lichen's ECR client (src/aws/ecr_test.cc) and of pulls from private registries.
// Every request is re-signed with the AWS SDK for JavaScript's signer (as test-server.js
// does for S3) and refused on any difference, the way ECR refuses it.
//
// Usage: node ecr-standin.js [options]  (each option also from the environment variable)
//   --access-key K      ECR_STANDIN_ACCESS_KEY     the one known access key (AKIDECRSTANDIN)
//   --secret S          ECR_STANDIN_SECRET         its secret key (ecr-standin-secret)
//   --session-token T   ECR_STANDIN_SESSION_TOKEN  when set, requests must carry this token
//   --region R          ECR_STANDIN_REGION         the region requests must be signed for (us-east-1)
//   --user U            ECR_STANDIN_USER           the registry user name handed out (AWS)
//   --password P        ECR_STANDIN_PASSWORD       the registry password handed out
//   --expires-in N      ECR_STANDIN_EXPIRES_IN     expiresAt = now + N seconds (43200, ECR's 12 h)
//   --account ID        ECR_STANDIN_ACCOUNT        the registry when the request names none
//   --proxy-endpoint U  ECR_STANDIN_PROXY_ENDPOINT proxyEndpoint answered (default: ECR's own
//                                                  https://<id>.dkr.ecr.<region>.amazonaws.com)
//   --fail-first N      ECR_STANDIN_FAIL_FIRST     answer the first N signed requests 500
//   --stay                                         keep running when stdin closes
// Listens on 127.0.0.1 (port chosen by the kernel) and prints the port as the first line
// on stdout. Exits when its stdin closes (unless --stay), so it never outlives a test.
// Logs one line per request to stderr.
//
// Answers, as ECR does: 200 {"authorizationData":[{authorizationToken, expiresAt,
// proxyEndpoint}]}; 403 UnrecognizedClientException for an unknown access key or session
// token; 403 InvalidSignatureException for a signature that differs (wrong secret, altered
// body), a wrong region or service in the scope, or a date 15 min off; 400
// UnknownOperationException for another X-Amz-Target; 400 SerializationException for
// another content type or a body that is not JSON; 400 InvalidParameterException for a
// registry id that is not 12 digits. Errors carry x-amzn-ErrorType and a JSON body.
'use strict'

const http = require('http')
const crypto = require('crypto')
const { SignatureV4 } = require('@smithy/signature-v4')
const { Sha256 } = require('@aws-crypto/sha256-js')

const TARGET = 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken'
const CONTENT_TYPE = 'application/x-amz-json-1.1'
const MAX_BODY = 64 * 1024
const MAX_SKEW_MS = 15 * 60 * 1000

function option (name, env, fallback) {
  const args = process.argv.slice(2)
  const i = args.indexOf(`--${name}`)
  if (i >= 0 && i + 1 < args.length) return args[i + 1]
  if (process.env[env] !== undefined) return process.env[env]
  return fallback
}

const config = {
  accessKey: option('access-key', 'ECR_STANDIN_ACCESS_KEY', 'AKIDECRSTANDIN'),
  secret: option('secret', 'ECR_STANDIN_SECRET', 'ecr-standin-secret'),
  sessionToken: option('session-token', 'ECR_STANDIN_SESSION_TOKEN', ''),
  region: option('region', 'ECR_STANDIN_REGION', 'us-east-1'),
  user: option('user', 'ECR_STANDIN_USER', 'AWS'),
  password: option('password', 'ECR_STANDIN_PASSWORD', 'ecr-standin-password'),
  expiresIn: Number(option('expires-in', 'ECR_STANDIN_EXPIRES_IN', '43200')),
  account: option('account', 'ECR_STANDIN_ACCOUNT', '123456789012'),
  proxyEndpoint: option('proxy-endpoint', 'ECR_STANDIN_PROXY_ENDPOINT', ''),
  failFirst: Number(option('fail-first', 'ECR_STANDIN_FAIL_FIRST', '0')),
  stay: process.argv.includes('--stay')
}
if (!Number.isFinite(config.expiresIn) || !Number.isInteger(config.failFirst) || config.failFirst < 0) {
  process.stderr.write('ecr-standin: --expires-in must be a number and --fail-first a count\n')
  process.exit(2)
}

let failuresLeft = config.failFirst

// An AWS JSON-protocol error: the type in the body's __type and in x-amzn-ErrorType.
function awsError (status, type, message) {
  return { status, type, message }
}

function send (res, status, headers, body) {
  res.writeHead(status, {
    'content-type': CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': crypto.randomUUID(),
    ...headers
  })
  res.end(body)
}

function amzDateToDate (amzDate) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate || '')
  if (!m) return null
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`)
}

async function verifySignature (req, body) {
  const auth = req.headers.authorization
  if (!auth) return awsError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth)
  if (!m) return awsError(400, 'IncompleteSignatureException', 'malformed Authorization header')
  const [, accessKeyId, scopeDate, region, service, signedHeaders, signature] = m
  const token = req.headers['x-amz-security-token']
  if (accessKeyId !== config.accessKey || (config.sessionToken !== '' && token !== config.sessionToken)) {
    return awsError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
  }
  if (service !== 'ecr') {
    return awsError(403, 'InvalidSignatureException', "Credential should be scoped to correct service: 'ecr'.")
  }
  if (region !== config.region) {
    return awsError(403, 'InvalidSignatureException', `Credential should be scoped to a valid region, not '${region}'.`)
  }
  const names = signedHeaders.split(';')
  // What AWS insists on being signed.
  for (const required of ['host', 'x-amz-date'].concat(token !== undefined ? ['x-amz-security-token'] : [])) {
    if (!names.includes(required)) {
      return awsError(403, 'InvalidSignatureException', `'${required}' must be a signed header.`)
    }
  }
  const date = amzDateToDate(req.headers['x-amz-date'])
  if (date === null || req.headers['x-amz-date'].slice(0, 8) !== scopeDate) {
    return awsError(400, 'IncompleteSignatureException', 'x-amz-date is missing, malformed or not the scope date')
  }
  if (Math.abs(Date.now() - date.getTime()) > MAX_SKEW_MS) {
    return awsError(403, 'InvalidSignatureException', `Signature expired: ${req.headers['x-amz-date']} is more than 15 min from the stand-in's time.`)
  }
  const headers = {}
  for (const name of names) {
    if (req.headers[name] === undefined) return awsError(403, 'InvalidSignatureException', `signed header ${name} missing`)
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
  // Configured as the SDK's ECR client configures it: the wire path escaped again (as
  // for every service but S3), no x-amz-content-sha256 added; the payload hash is
  // computed from the body received, so an altered body is a differing signature.
  const signer = new SignatureV4({
    service,
    region,
    sha256: Sha256,
    credentials: { accessKeyId, secretAccessKey: config.secret, sessionToken: token },
    uriEscapePath: true,
    applyChecksum: false
  })
  const signed = await signer.sign({
    method: req.method,
    protocol: 'http:',
    hostname: req.headers.host,
    path: q >= 0 ? req.url.slice(0, q) : req.url,
    query,
    headers,
    body
  }, { signingDate: date })
  const expected = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization)[1]
  if (expected !== signature) {
    return awsError(403, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.')
  }
  return null
}

// The request's registry ids, or an error.
function registryIds (body) {
  let input
  try {
    input = JSON.parse(body.length === 0 ? '{}' : body.toString('utf8'))
  } catch (e) {
    return awsError(400, 'SerializationException', 'the body is not JSON')
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return awsError(400, 'SerializationException', 'the body is not a JSON object')
  }
  const ids = input.registryIds === undefined ? [config.account] : input.registryIds
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > 10 ||
      !ids.every((id) => typeof id === 'string' && /^[0-9]{12}$/.test(id))) {
    return awsError(400, 'InvalidParameterException', 'registryIds must be 1 to 10 twelve-digit account ids')
  }
  return ids
}

async function handle (req, body) {
  if (req.method !== 'POST') return awsError(400, 'UnknownOperationException', `${req.method} is not an operation`)
  const problem = await verifySignature(req, body)
  if (problem) return problem
  if (req.headers['x-amz-target'] !== TARGET) {
    return awsError(400, 'UnknownOperationException', `unknown X-Amz-Target '${req.headers['x-amz-target'] || ''}'`)
  }
  if ((req.headers['content-type'] || '').split(';')[0].trim() !== CONTENT_TYPE) {
    return awsError(400, 'SerializationException', `Content-Type must be ${CONTENT_TYPE}`)
  }
  const ids = registryIds(body)
  if (!Array.isArray(ids)) return ids
  if (failuresLeft > 0) {
    const n = config.failFirst - failuresLeft + 1
    failuresLeft--
    return awsError(500, 'ServerException', `stand-in failure ${n} of ${config.failFirst}`)
  }
  const token = Buffer.from(`${config.user}:${config.password}`, 'utf8').toString('base64')
  // Epoch seconds with a fraction, as ECR writes them.
  const expiresAt = Date.now() / 1000 + config.expiresIn
  return {
    status: 200,
    ids,
    body: JSON.stringify({
      authorizationData: ids.map((id) => ({
        authorizationToken: token,
        expiresAt,
        proxyEndpoint: config.proxyEndpoint !== '' ? config.proxyEndpoint : `https://${id}.dkr.ecr.${config.region}.amazonaws.com`
      }))
    })
  }
}

function main () {
  const server = http.createServer((req, res) => {
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      if (size <= MAX_BODY) chunks.push(c)
    })
    req.on('end', async () => {
      const key = /Credential=([^/,]+)/.exec(req.headers.authorization || '')
      const who = `key=${key ? key[1] : '-'}`
      let answer
      if (size > MAX_BODY) {
        answer = awsError(413, 'SerializationException', `the body is larger than ${MAX_BODY} bytes`)
      } else {
        try {
          answer = await handle(req, Buffer.concat(chunks))
        } catch (e) {
          answer = awsError(500, 'InternalFailure', String(e))
        }
      }
      // Logged before answering, so a client that has its answer finds the line written.
      if (answer.status === 200) {
        process.stderr.write(`ecr-standin: ${req.method} ${req.url} 200 GetAuthorizationToken registry=${answer.ids.join(',')} ${who}\n`)
        send(res, 200, {}, answer.body)
      } else {
        process.stderr.write(`ecr-standin: ${req.method} ${req.url} ${answer.status} ${answer.type}: ${answer.message} ${who}\n`)
        send(res, answer.status,
          { 'x-amzn-errortype': `${answer.type}:http://internal.amazon.com/coral/com.amazonaws.ecr/` },
          JSON.stringify({ __type: `com.amazonaws.ecr#${answer.type}`, message: answer.message }))
      }
    })
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${server.address().port}\n`)
  })
  if (!config.stay) {
    // The test holds our stdin; when it goes away (even killed), so do we.
    process.stdin.on('end', () => process.exit(0))
    process.stdin.on('error', () => process.exit(0))
    process.stdin.resume()
  }
}

main()
