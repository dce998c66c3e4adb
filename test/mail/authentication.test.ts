import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticationOf, parseAuthenticationResults } from '../../shared/mail/authentication.js';
import { matchesFilters } from '../../shared/mail/filters.js';
import { parseMessage } from '../../shared/mail/parse.js';
import { CORPUS_PROFILE } from '../fixtures/corpus.js';

/** Exchange Online's own header: no authserv-id, comments, `;` without a space. */
const EXO_PASS =
  'spf=pass (sender IP is 40.107.22.51) smtp.mailfrom=fabrikam.example; dkim=pass (signature was verified) header.d=fabrikam.example;dmarc=pass action=none header.from=fabrikam.example;compauth=pass reason=100';
const EXO_SPOOFED = 'spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=fabrikam.example; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=fabrikam.example;compauth=fail reason=000';

const index = (entries: Array<[string, string]>) => {
  const map = new Map<string, string[]>();
  for (const [k, v] of entries) map.set(k, [...(map.get(k) ?? []), v]);
  return map;
};

describe('sender authentication from Authentication-Results and AuthAs', () => {
  it("reads Exchange Online's header: spf, dkim, dmarc, compauth, verdict pass", () => {
    assert.deepEqual(authenticationOf(index([['authentication-results', EXO_PASS]])), { verdict: 'pass', spf: 'pass', dkim: 'pass', dmarc: 'pass', compauth: 'pass' });
  });

  it('a spoofed From is verdict fail', () => {
    assert.deepEqual(authenticationOf(index([['authentication-results', EXO_SPOOFED]])), { verdict: 'fail', spf: 'fail', dkim: 'none', dmarc: 'fail', compauth: 'fail' });
  });

  it("only the topmost header counts: a sender's own pass below the receiver's fail is ignored", () => {
    const forged = 'mx.fabrikam.example; spf=pass smtp.mailfrom=contoso.com; dkim=pass header.d=contoso.com; dmarc=pass header.from=contoso.com';
    assert.equal(authenticationOf(index([['authentication-results', EXO_SPOOFED], ['authentication-results', forged]])).verdict, 'fail');
    // No header from the receiver at all, only the forged one further down: nothing the receiver wrote says pass.
    assert.equal(authenticationOf(index([['authentication-results', 'spf=none'], ['authentication-results', forged]])).verdict, 'none');
  });

  it('with trustedAuthservIds, the newest header of a trusted authserv-id counts, whatever sits above it', () => {
    const receiver = 'mx.contoso.com 1; spf=pass smtp.mailfrom=fabrikam.example; dkim=fail header.d=fabrikam.example; dmarc=pass header.from=fabrikam.example';
    const forged = 'evil.example; dmarc=fail';
    const found = authenticationOf(index([['authentication-results', forged], ['authentication-results', receiver]]), ['MX.contoso.com']);
    assert.deepEqual(found, { verdict: 'pass', spf: 'pass', dkim: 'fail', dmarc: 'pass', authservId: 'mx.contoso.com' });
    assert.equal(authenticationOf(index([['authentication-results', forged]]), ['mx.contoso.com']).verdict, 'none', 'no trusted header: none');
  });

  it('comments and quoted strings cannot smuggle a result in; of two DKIM signatures a pass wins', () => {
    const parsed = parseAuthenticationResults('mx.contoso.com; dkim=fail (bad; dmarc=pass) header.d=a.example; dkim=pass header.d=b.example; spf=neutral smtp.mailfrom="x;dmarc=pass@fabrikam.example"');
    assert.equal(parsed.authservId, 'mx.contoso.com');
    assert.deepEqual([...parsed.results], [['dkim', 'pass'], ['spf', 'neutral']]);
  });

  it('Exchange AuthAs Internal is a pass; other AuthAs values decide nothing; odd tokens are left out', () => {
    assert.deepEqual(authenticationOf(index([['x-ms-exchange-organization-authas', 'Internal']])), { verdict: 'pass', authAs: 'Internal' });
    assert.deepEqual(authenticationOf(index([['x-ms-exchange-organization-authas', 'Anonymous']])), { verdict: 'none', authAs: 'Anonymous' });
    assert.deepEqual(authenticationOf(index([['x-ms-exchange-organization-authas', 'Internal\u0000<script>']])), { verdict: 'none' });
    assert.deepEqual(authenticationOf(index([])), { verdict: 'none' });
  });

  it('is part of the delivered JSON, and filters.requireAuthenticated passes only verdict pass', async () => {
    const raw = (ar: string) => Buffer.from(`Authentication-Results: ${ar}\r\nFrom: boss@fabrikam.example\r\nTo: support@contoso.com\r\nSubject: Approve PO 4711\r\nDate: Fri, 01 Mar 2024 09:00:00 +0000\r\n\r\nApproved.\r\n`);
    const ctx = { profile: CORPUS_PROFILE, via: 'imap' as const, providerId: '1:1' };
    const genuine = await parseMessage(raw(EXO_PASS), ctx);
    const spoofed = await parseMessage(raw(EXO_SPOOFED), ctx);
    assert.equal(genuine.authentication.verdict, 'pass');
    assert.equal(spoofed.authentication.verdict, 'fail');
    const filters = { mode: 'allow' as const, emails: ['boss@fabrikam.example'], domains: [], keywords: [], unreadOnly: false, requireAuthenticated: true };
    assert.equal(matchesFilters(genuine, {}, filters).pass, true);
    assert.deepEqual(matchesFilters(spoofed, {}, filters), { pass: false, reason: 'sender not authenticated (verdict fail)' });
    assert.equal(matchesFilters(spoofed, {}, { ...filters, requireAuthenticated: false }).pass, true, 'without it, an allow list trusts From');
  });
});
