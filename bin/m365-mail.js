#!/usr/bin/env node
require('../dist/cli/m365-mail.js').main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
