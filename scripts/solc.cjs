#!/usr/bin/env node
// Makes the npm `solc` package (the official compiler built to JavaScript) answer like the native
// `solc` binary, so py-solc-x can drive it: `--version` and `--standard-json` (input on stdin).
// solcjs's own CLI prints notices on stdout before the JSON, which no JSON parser accepts.
'use strict';
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes('--standard-json')) {
  const chunks = [];
  process.stdin.on('data', (chunk) => chunks.push(chunk));
  process.stdin.on('end', () => {
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8')));
  });
} else {
  process.stderr.write('usage: solc.cjs --version | --standard-json < input.json\n');
  process.exit(2);
}
