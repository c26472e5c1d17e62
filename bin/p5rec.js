#!/usr/bin/env node
// Thin shim: the CLI lives in the compiled library.
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`p5rec: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
