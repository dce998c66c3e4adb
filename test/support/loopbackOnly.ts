import net from 'node:net';

/**
 * Preloaded into every test process by test/run.js (NODE_OPTIONS --require, so spawned CLI and
 * Azurite processes get it too): tests reach loopback only, and this makes that a checked fact
 * instead of a habit. A TCP or TLS connection to any other host throws before a packet leaves, and
 * fails the test file at exit even when the code under test catches the error, so that a test
 * expecting ECONNECTION cannot pass because a real Microsoft host was tried.
 */
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/i;

/** The host a Socket#connect call aims at; undefined for a local (IPC) path. */
function targetHost(args: unknown[]): string | undefined {
  // net.connect and tls.connect hand over their arguments already normalised, as [options, callback].
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) return typeof args[1] === 'string' ? args[1] : 'localhost';
  if (typeof first === 'string') return undefined;
  const options = (first ?? {}) as { host?: unknown; path?: unknown };
  if (typeof options.path === 'string') return undefined;
  return typeof options.host === 'string' ? options.host.replace(/^\[(.*)\]$/, '$1') : 'localhost';
}

const refused: string[] = [];
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
  const host = targetHost(args);
  if (host !== undefined && !LOOPBACK.test(host)) {
    const error = new Error(`test network guard: a connection to ${host} was attempted; tests reach 127.0.0.1 only`);
    refused.push(`${error.stack ?? error.message}`);
    throw error;
  }
  return Reflect.apply(connect, this, args) as net.Socket;
} as typeof connect;

process.on('exit', () => {
  if (refused.length === 0) return;
  process.stderr.write(`${refused.join('\n')}\n`);
  process.exitCode = 1;
});
