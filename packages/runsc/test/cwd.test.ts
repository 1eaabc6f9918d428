import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const RUNSC = path.join(__dirname, '..', 'bin', 'runsc.js');

test('working directory under host /tmp stays visible', () => {
  const dir = fs.mkdtempSync('/tmp/runsc-cwd-');
  fs.writeFileSync(path.join(dir, 'note.txt'), 'from the host\n');
  const result = spawnSync(process.execPath, [RUNSC, 'do', '--', '/usr/bin/busybox', 'cat', 'note.txt'], { cwd: dir, encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.is(result.stderr, '');
  assert.is(result.stdout, 'from the host\n');
  assert.is(result.status, 0);
});

test('/tmp is writable when the working directory is elsewhere', () => {
  const result = spawnSync(process.execPath, [RUNSC, 'do', '--', '/usr/bin/busybox', 'sh', '-c', 'echo kept > /tmp/x && cat /tmp/x'], {
    cwd: '/',
    encoding: 'utf8',
  });
  assert.is(result.stdout, 'kept\n');
  assert.is(result.status, 0);
});

test.run();
