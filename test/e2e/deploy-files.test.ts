// The files of deploy/ that no other test runs: the systemd unit is checked by systemd's own
// verifier (where it is installed) and for the settings docs/production.md promises; the
// environment template must be a configuration seckill accepts, production-shaped.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

function systemdAnalyze(): string | null {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/bin']) {
    const p = path.join(d, 'systemd-analyze');
    if (d && fs.existsSync(p)) return p;
  }
  return null;
}

/** KEY=value lines of an environment file (systemd's EnvironmentFile syntax, as used here). */
function envFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

describe('deploy/seckill.service', () => {
  const unit = read('deploy/seckill.service');

  test('has the settings docs/production.md describes', () => {
    for (const line of [
      'Restart=on-failure',
      'User=seckill',
      'EnvironmentFile=/etc/seckill/seckill.env',
      'Environment=SECKILL_DATA_DIR=/var/lib/seckill',
      'UMask=0077',
      'StateDirectoryMode=0700',
      'LimitNOFILE=65536',
      'KillSignal=SIGTERM',
      'ReadWritePaths=/var/lib/seckill',
    ]) {
      assert.ok(unit.split('\n').includes(line), `the unit has ${line}`);
    }
    assert.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/seckill\/bin\/seckill\.mjs start$/m);
    assert.ok(fs.existsSync(path.join(ROOT, 'bin/seckill.mjs')), 'ExecStart runs bin/seckill.mjs of the release');
  });

  const analyze = systemdAnalyze();
  test('systemd-analyze verify finds nothing to say', { skip: analyze === null && 'systemd-analyze is not installed' }, async () => {
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      execFile(analyze as string, ['verify', path.join(ROOT, 'deploy/seckill.service')], { timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? 1 : 0, text: stdout + stderr });
      });
    });
    // Only the service user may be unknown on this machine; any other remark is a mistake in the unit.
    const remarks = out.text.split('\n').filter((l) => l.trim() && !/\b(?:user|group)\b.*\bseckill\b|\bseckill\b.*\b(?:user|group)\b/i.test(l));
    assert.deepEqual(remarks, [], out.text);
  });
});

describe('deploy/seckill.env.example', () => {
  test('is a configuration seckill accepts: secrets from the environment, demo off, behind nginx', () => {
    const env = envFile(read('deploy/seckill.env.example'));
    const config = loadConfig(env);
    assert.ok(config.adminKey && config.userSecret, 'both secrets from the environment');
    assert.equal(config.demo, false);
    assert.equal(config.demoSale, false);
    assert.ok(config.metricsToken, 'a metrics token');
    assert.ok(config.tokenAudience, 'a token audience');
    assert.deepEqual(config.trustProxy, ['127.0.0.1']);
    assert.equal(config.host, '127.0.0.1');
    // Every variable it sets is one seckill reads (the README's configuration table names them all).
    const readme = read('README.md');
    for (const k of Object.keys(env)) assert.ok(readme.includes(`\`${k}\``), `${k} is in the README's configuration table`);
  });
});
