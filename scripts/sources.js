#!/usr/bin/env node
'use strict';
// Prints part of sources.json for the build files, space-separated:
//   sources.js common          the sources every build compiles
//   sources.js sources <isa>   one ISA's sources
//   sources.js flags <isa>     one ISA's compiler flags
const list = require('../sources.json');

const [what, isa] = process.argv.slice(2);
const out = what === 'common' ? list.common : list.isa[isa] && list.isa[isa][what];
if (!Array.isArray(out)) {
  console.error(`sources.js: unknown request "${process.argv.slice(2).join(' ')}"`);
  process.exit(1);
}
console.log(out.join(' '));
