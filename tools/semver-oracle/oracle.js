#!/usr/bin/env node
// The reference side of Lichen's semver differential test (src/semver/semver_differential_test.cc).
// Input (file named by argv[2], or stdin): one pair per line, "<version hex>\t<range hex>", each
// the UTF-8 bytes of the string in hex so that any byte survives the trip.
// Output: a header "semver <package version>", then per pair
// "<semver.valid(v) or null>\t<semver.validRange(r) or null>\t<semver.satisfies(v, r) ? 1 : 0>",
// then "end <pairs>". The package version is pinned in package.json.
'use strict'

const fs = require('fs')
const path = require('path')
const semver = require('semver')

const input = fs.readFileSync(process.argv[2] || 0)
const decode = (hex) => Buffer.from(hex, 'hex').toString('utf8')
const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve('semver')), 'package.json'), 'utf8'))

const out = [`semver ${pkg.version}`]
let pairs = 0
for (const line of input.toString('latin1').split('\n')) {
  if (line === '') {
    continue
  }
  const tab = line.indexOf('\t')
  if (tab < 0) {
    process.stderr.write(`oracle: malformed line ${pairs + 1}\n`)
    process.exit(2)
  }
  const version = decode(line.slice(0, tab))
  const range = decode(line.slice(tab + 1))
  const valid = semver.valid(version)
  const validRange = semver.validRange(range)
  out.push(`${valid === null ? 'null' : valid}\t${validRange === null ? 'null' : validRange}\t` +
    `${semver.satisfies(version, range) ? 1 : 0}`)
  pairs++
}
out.push(`end ${pairs}`)
process.stdout.write(out.join('\n') + '\n')
