import assert from 'node:assert/strict';
import type { TokenProvider } from '../../shared/identity/tokenProvider.js';

/** What the contract cases need of an adapter's token side: the provider its transport uses, every token handed out, every line logged. */
export interface TokenSession {
  deps: { tokens: TokenProvider };
  tokensSeen: string[];
  logs: string[];
}

/** A case against a fixture of its own, released whatever the case's outcome. */
export function withFixture<T extends { close(): Promise<void> }>(open: () => Promise<T>, body: (fixture: T) => Promise<void>): () => Promise<void> {
  return async () => {
    const fixture = await open();
    try {
      await body(fixture);
    } finally {
      await fixture.close();
    }
  };
}

/** The session was handed at least one token, and none of them appears in its log lines or in `texts` (an error's message and hint). */
export function assertNoTokenLeaked(session: TokenSession, texts: string[] = []): void {
  assert.ok(session.tokensSeen.length > 0, 'the transport was handed a token');
  for (const text of [...texts, ...session.logs]) {
    assert.ok(!session.tokensSeen.some((token) => text.includes(token)), `an access token leaked into: ${text.slice(0, 120)}`);
  }
}
