/**
 * The /proc files generated from the sandbox's own state: PID/limits, PID/mounts, PID/statm,
 * version, stat and filesystems, busybox top reading them, and the controlling terminal in
 * PID/stat. Formats are compared with the native files, values with what the sandbox defines.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInSandbox, runNative, testPlatforms } from './helpers/host.js';

const BUSYBOX = '/usr/bin/busybox';
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];
const TERMINAL_FIXTURES = path.join(__dirname, 'fixtures', 'terminal');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-proc-files-'));
const STATM = path.join(dir, 'statm');
execFileSync('musl-gcc', ['-static', '-O1', '-o', STATM, path.join(__dirname, 'fixtures', 'proc', 'statm.c')]);

/** Runs a busybox shell script in the sandbox, asserts exit status 0 and returns stdout. */
async function sandboxScript(platform: string, script: string): Promise<string> {
  const result = await runInSandbox([BUSYBOX, 'sh', '-c', script], dir, ENV, { platform });
  assert.is(result.status, 0, result.stderr);
  return result.stdout.toString();
}

/** Returns the first word of each line: the keys of /proc/stat. */
function statKeys(text: string): string[] {
  return text.trimEnd().split('\n').map((line) => line.split(' ')[0]);
}

const test = suite('proc files');

test.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const platform of testPlatforms()) {
  test(`limits match native on ${platform}`, async () => {
    // The sandbox's init starts with the limits of this process, as a native child does.
    const script = 'ulimit -s 65536; ulimit -n 512; cat /proc/self/limits';
    const native = runNative([BUSYBOX, 'sh', '-c', script], dir, ENV);
    const sandboxed = await sandboxScript(platform, script);
    assert.is(sandboxed, native.stdout.toString());
    assert.match(sandboxed, /\nMax stack size {12}67108864 {13}/);
    assert.match(sandboxed, /\nMax open files {12}512 {18}512 {18}files {5}\n/);
  });

  test(`PID/mounts equals /proc/mounts on ${platform}`, async () => {
    const output = await sandboxScript(platform, 'cat /proc/mounts; echo ==; cat /proc/self/mounts; echo ==; cat /proc/1/mounts');
    const [mounts, self, init] = output.split('==\n');
    assert.match(mounts, /^host \/ host ro 0 0\n/);
    assert.is(self, mounts);
    assert.is(init, mounts);
  });

  test(`statm matches maps on ${platform}`, async () => {
    assert.is(runNative([STATM], dir, ENV).stdout.toString(), 'statm matches maps\n', 'native run');
    const result = await runInSandbox([STATM], dir, ENV, { platform });
    assert.is(result.stdout.toString(), 'statm matches maps\n', result.stderr);
    assert.is(result.status, 0);
  });

  test(`version shows uname values on ${platform}`, async () => {
    const output = await sandboxScript(platform, 'cat /proc/version; uname -r; uname -v');
    const [version, release, build] = output.trimEnd().split('\n');
    assert.ok(version.startsWith(`Linux version ${release} (`), version);
    assert.ok(version.endsWith(`) ${build}`), version);
  });

  test(`stat has native keys on ${platform}`, async () => {
    const output = await sandboxScript(platform, `${BUSYBOX} true; ${BUSYBOX} true; ${BUSYBOX} cat /proc/stat; echo ==; cat /proc/uptime; date +%s; nproc`);
    const [stat, rest] = output.split('==\n');
    const [uptime, now, cpus] = rest.trimEnd().split('\n');

    const expectedKeys = ['cpu', ...Array.from({ length: Number(cpus) }, (_, cpu) => `cpu${cpu}`)];
    expectedKeys.push('intr', 'ctxt', 'btime', 'processes', 'procs_running', 'procs_blocked', 'softirq');
    assert.equal(statKeys(stat), expectedKeys);
    assert.equal(statKeys(fs.readFileSync('/proc/stat', 'latin1')).filter((key) => !/^cpu\d/.test(key)), expectedKeys.filter((key) => !/^cpu\d/.test(key)), 'native keys');

    const lines = new Map(stat.trimEnd().split('\n').map((line) => [line.split(' ')[0], line.split(/ +/).slice(1)] as const));
    const nativeCpu = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].split(/ +/).slice(1);
    assert.is(lines.get('cpu')?.length, nativeCpu.length, 'cpu line fields');
    assert.is(lines.get('cpu0')?.length, nativeCpu.length, 'cpu0 line fields');
    assert.is(lines.get('softirq')?.length, 11, 'softirq fields');
    assert.ok(stat.startsWith('cpu  '), 'two spaces after the total cpu name');

    const btime = Number(lines.get('btime')?.[0]);
    const drift = Math.abs(btime + Number(uptime.split(' ')[0]) - Number(now));
    assert.ok(drift <= 2, `btime ${btime} + uptime ${uptime} differs from date ${now} by ${drift} s`);
    // The shell, two true processes and cat: four tasks at least when cat reads the file.
    assert.ok(Number(lines.get('processes')?.[0]) >= 4, `processes ${lines.get('processes')}`);
    assert.ok(Number(lines.get('procs_running')?.[0]) >= 1, 'procs_running');
  });

  test(`filesystems lists mounted types on ${platform}`, async () => {
    const output = await sandboxScript(platform, 'cat /proc/filesystems; echo ==; cat /proc/mounts');
    const [filesystems, mounts] = output.split('==\n');
    const types = filesystems.trimEnd().split('\n').map((line) => {
      assert.match(line, /^nodev\t\w+$/);
      return line.split('\t')[1];
    });
    for (const line of mounts.trimEnd().split('\n')) {
      const type = line.split(' ')[2];
      assert.ok(types.includes(type), `${type} missing from /proc/filesystems`);
    }
  });

  test(`top lists sandbox processes on ${platform}`, async () => {
    const output = await sandboxScript(platform, `${BUSYBOX} sleep 1 & ${BUSYBOX} top -bn1; wait`);
    const lines = output.split('\n');
    assert.match(lines[0], /^Mem: /);
    assert.match(lines[1], /^CPU: /);
    const header = lines.findIndex((line) => /^\s*PID\s+PPID/.test(line));
    assert.ok(header > 0, output);
    const processes = lines.slice(header + 1).filter((line) => line.trim() !== '').map((line) => line.trim().split(/\s+/));
    assert.equal(processes.map((fields) => fields[0]).sort(), ['1', '2', '3']);
    assert.ok(processes.some((fields) => fields.slice(7).join(' ') === `${BUSYBOX} sleep 1`), output);
    assert.ok(processes.some((fields) => fields.slice(7).join(' ') === `${BUSYBOX} top -bn1`), output);
  });

  test(`stat shows controlling terminal on ${platform}`, () => {
    // tty_nr is the terminal's device number in new_encode_dev form, and tpgid its foreground group.
    const script = `${BUSYBOX} cut -d' ' -f5,7,8 /proc/self/stat; ${BUSYBOX} stat -L -c '%t %T' /proc/self/fd/0`;
    const argv = [BUSYBOX, 'sh', '-c', script];
    const runs = {
      native: spawnSync('python3', [path.join(TERMINAL_FIXTURES, 'pty-run.py'), '[]', '--', ...argv], { encoding: 'latin1', cwd: '/' }),
      sandbox: spawnSync(
        'python3',
        [path.join(TERMINAL_FIXTURES, 'pty-run.py'), '[]', '--', process.execPath, '--import', 'tsx', path.join(TERMINAL_FIXTURES, 'run-on-terminal.mts'), platform, ...argv],
        { encoding: 'latin1', cwd: __dirname },
      ),
    };
    for (const [name, run] of Object.entries(runs)) {
      assert.is(run.status, 0, `${name} pty-run.py: ${run.stderr}`);
      const output = (JSON.parse(run.stdout) as { output: string }).output;
      const match = /(\d+) (\d+) (-?\d+)\r\n([0-9a-f]+) ([0-9a-f]+)\r\n/.exec(output);
      assert.ok(match, `${name} output: ${JSON.stringify(output)}`);
      const [pgid, ttyNr, tpgid, major, minor] = [match[1], match[2], match[3], parseInt(match[4], 16), parseInt(match[5], 16)];
      assert.is(Number(ttyNr), (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12), `${name} tty_nr`);
      assert.is(tpgid, pgid, `${name} tpgid`);
    }
  });
}

test.run();
