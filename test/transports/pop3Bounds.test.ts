import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { MULTI_LINE_LIMITS, Pop3Client, Pop3CommandError } from '../../shared/transports/pop3/pop3Client.js';
import { serverTls } from '../peers/tls.js';

/**
 * A hostile server on loopback: it greets like POP3, then answers CAPA with a listing that never
 * ends, and UIDL with a line far longer than any unique-id. The client must stop reading at its
 * bounds instead of buffering whatever it is sent.
 */
describe('POP3 client: multi-line answers are bounded', () => {
  let server: Server;
  let port = 0;
  const sentBytes: number[] = [];

  before(async () => {
    server = createServer(serverTls(), (socket: TLSSocket) => {
      socket.on('error', () => socket.destroy());
      socket.write('+OK POP3 ready\r\n');
      socket.on('data', (data: Buffer) => {
        const verb = data.toString('latin1').trim().toUpperCase();
        if (verb === 'CAPA') {
          socket.write('+OK\r\n');
          let sent = 0;
          const line = Buffer.from(`${'X'.repeat(60)}\r\n`);
          const flood = () => {
            // Writes until the client hangs up (or 64 MiB, so a client without a bound still ends the test).
            while (!socket.destroyed && sent < 64 * 1024 * 1024) {
              sent += line.length;
              if (!socket.write(line)) return void socket.once('drain', flood);
            }
          };
          socket.once('close', () => sentBytes.push(sent));
          flood();
        } else if (verb === 'UIDL') {
          socket.write(`+OK\r\n1 ${'U'.repeat(5000)}\r\n.\r\n`);
        } else if (verb === 'NOOP') {
          socket.write('+OK\r\n');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('an answer that never ends fails the command once it is past its bound, and the connection is dropped', async () => {
    const client = await Pop3Client.connect({ host: '127.0.0.1', port, answerTimeoutMs: 10_000 });
    const error = await client.capabilities().then(
      () => assert.fail('CAPA should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof Pop3CommandError, String(error));
    assert.equal(error.command, 'CAPA');
    assert.match(error.response, new RegExp(`over ${MULTI_LINE_LIMITS.CAPA.bytes} bytes`));
    // The server stopped when the client hung up: far short of the 64 MiB it was ready to send.
    for (let i = 0; i < 100 && sentBytes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sentBytes.length, 1);
    assert.ok(sentBytes[0]! < 16 * 1024 * 1024, `the server wrote ${sentBytes[0]} bytes before the client hung up`);
  });

  it('a listing line longer than any unique-id is refused, naming the command', async () => {
    const client = await Pop3Client.connect({ host: '127.0.0.1', port, answerTimeoutMs: 10_000 });
    const error = await client.uidl().then(
      () => assert.fail('UIDL should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof Pop3CommandError, String(error));
    assert.equal(error.command, 'UIDL');
    assert.match(error.response, new RegExp(`over ${MULTI_LINE_LIMITS.UIDL.line} characters`));
    client.close();
  });
});
