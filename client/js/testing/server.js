// Starts the Go test server (internal/testserver) for the client's tests.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let binary;

/** Builds the test server once per test process. */
export function build() {
  if (binary) return binary;
  binary = path.join(mkdtempSync(path.join(tmpdir(), 'ginws-js-')), 'testserver');
  execFileSync('go', ['build', '-o', binary, './internal/testserver'], { cwd: root, stdio: 'inherit' });
  return binary;
}

/**
 * Starts the server on addr (127.0.0.1:0 picks a free port), with more
 * flags if given (-compress).
 * @returns {Promise<{addr: string, url: string, stop: () => Promise<void>}>}
 */
export function start(addr = '127.0.0.1:0', flags = []) {
  const proc = spawn(build(), ['-addr', addr, ...flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('test server did not start')); }, 20000);
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on (\S+)/);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        addr: m[1],
        url: `ws://${m[1]}/ws`,
        async stop() {
          if (proc.exitCode === null) proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
          await exited;
          clearTimeout(t);
        },
      });
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`test server exited with ${code}`)); });
  });
}
