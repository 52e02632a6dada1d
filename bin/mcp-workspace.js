#!/usr/bin/env node
// Entry point of the `mcp-workspace` command: runs the bundled CLI (built by `npm run build`).
const { main } = require('../dist/cli.js');

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`mcp-workspace: ${(err && err.stack) || String(err)}\n`);
    process.exit(1);
  },
);
