#!/usr/bin/env node
'use strict';
// On SIGUSR1, Node 20 starts its inspector, a debugger listening on 127.0.0.1:9229. It would give
// any local user who can signal runsc control of the sentry, which runs outside the sandbox. Node 20 has no
// --disable-sigusr1 flag, but a listener replaces the inspector's handler, and removing the last
// listener would make SIGUSR1 fatal, so this one stays for the life of the process. While the
// sandbox runs, the `do` command adds the listener that forwards SIGUSR1 to the program.
// NOTE: a SIGUSR1 that arrives while Node starts up, before this line runs, still starts the
// inspector.
process.on('SIGUSR1', () => {});

require('../dist/cli.js').main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    process.stderr.write(`runsc: internal error: ${error && error.message ? error.message : String(error)}\n`);
    process.exitCode = 70;
  },
);
