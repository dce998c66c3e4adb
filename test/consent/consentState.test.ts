import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CONSENT_TTL_MS, consentStateKey, openConsentState, sealConsentState, type ConsentState } from '../../shared/consent/consentState.js';
import { mailErrorOf } from '../support/mailError.js';

const key = consentStateKey('k'.repeat(32));
const state = (exp: number): ConsentState => ({ v: 1, profile: 'desk', state: 's'.repeat(43), nonce: 'n'.repeat(22), verifier: 'v'.repeat(43), redirectUri: 'https://fn.example/api/oauth/callback', exp });

describe('the sealed consent state', () => {
  it('opens to what was sealed, and hides it: neither state nor verifier is readable in the cookie', () => {
    const sealed = sealConsentState(state(Date.now() + 1000), key);
    assert.deepEqual(openConsentState(sealed, key).verifier, 'v'.repeat(43));
    assert.doesNotMatch(Buffer.from(sealed, 'base64url').toString('latin1'), /vvvv|ssss/);
  });

  it('refuses one sealed under another OAUTH_STATE_KEY, or altered', () => {
    const sealed = sealConsentState(state(Date.now() + 1000), key);
    const other = consentStateKey('x'.repeat(32));
    assert.equal(mailErrorOf(() => openConsentState(sealed, other)).code, 'ECONSENT');
    const bytes = Buffer.from(sealed, 'base64url');
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    assert.match(mailErrorOf(() => openConsentState(bytes.toString('base64url'), key)).message, /not authentic/);
  });

  it(`expires ${CONSENT_TTL_MS / 60_000} minutes after connect`, () => {
    const now = 1_700_000_000_000;
    const sealed = sealConsentState(state(now + CONSENT_TTL_MS), key);
    assert.equal(openConsentState(sealed, key, now + CONSENT_TTL_MS).profile, 'desk');
    const error = mailErrorOf(() => openConsentState(sealed, key, now + CONSENT_TTL_MS + 1));
    assert.equal(error.code, 'ECONSENT');
    assert.match(error.hint ?? '', /GET \/api\/connect\/desk/);
  });

  it('needs OAUTH_STATE_KEY of at least 32 characters: ECONFIG naming the setting', () => {
    const error = mailErrorOf(() => consentStateKey('short'));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.field, 'OAUTH_STATE_KEY');
  });
});
