#!/usr/bin/env node
'use strict';
// Prints one list from sources.json for the build files, space-separated. The arguments are
// the path of keys to it:
//   sources.js common                 the sources every build compiles
//   sources.js cflags | ldflags       the flags every build uses
//   sources.js isa <isa> sources      one ISA's sources (also: flags)
//   sources.js portable ldflags       the prebuilt binary's extra link flags (also: sources)
const list = require('../sources.json');

const keys = process.argv.slice(2);
const out = keys.reduce((node, key) => (node && typeof node === 'object' ? node[key] : undefined), list);
if (!Array.isArray(out)) {
  console.error(`sources.js: sources.json has no list at "${keys.join(' ')}"`);
  process.exit(1);
}
console.log(out.join(' '));
