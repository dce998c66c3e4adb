import { createServer, type AddressInfo } from 'node:net';
import type { TokenProvider } from '../../shared/identity/tokenProvider.js';

/** A loopback port that was free a moment ago and that nothing listens on now: a connection to it is refused. */
export async function portNobodyListensOn(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The provider, with every token it hands out pushed onto `seen` (for the leak checks). */
export function recordingTokens(provider: TokenProvider, seen: string[]): TokenProvider {
  return {
    async getToken(scope, options) {
      const token = await provider.getToken(scope, options);
      seen.push(token);
      return token;
    },
    renew: () => provider.renew(),
  };
}

/** A provider handing out a token no token endpoint issued, which every server refuses. */
export const UNISSUED_TOKENS: TokenProvider = { getToken: async () => 'tok-never-issued-by-entra', renew: () => {} };
