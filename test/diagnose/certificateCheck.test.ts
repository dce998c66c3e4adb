import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { inspectCertificatePem } from '../../shared/diagnose/certificate.js';
import { MailError } from '../../shared/errors.js';

const DAY = 24 * 3600 * 1000;

async function certificate(notBefore: Date, notAfter: Date): Promise<{ key: string; cert: string }> {
  const selfsigned = require('selfsigned') as typeof import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'mail-app' }], { keySize: 2048, notBeforeDate: notBefore, notAfterDate: notAfter });
  return { key: pems.private, cert: pems.cert };
}

function inspectionError(pem: string): MailError {
  try {
    inspectCertificatePem(pem, { secretName: 'ops-cert' });
  } catch (error) {
    assert.ok(error instanceof MailError);
    return error;
  }
  assert.fail('the PEM was accepted');
}

describe('the certificate a profile keeps in the secret store is checked before any token request', () => {
  let valid: { key: string; cert: string };
  before(async () => {
    valid = await certificate(new Date(Date.now() - DAY), new Date(Date.now() + 365 * DAY));
  });

  it('a key and its unexpired certificate pass, with subject, thumbprint and expiry', () => {
    const facts = inspectCertificatePem(`${valid.key}\n${valid.cert}`, { secretName: 'ops-cert' });
    assert.equal(facts.subject, 'CN=mail-app');
    assert.match(facts.thumbprint, /^[0-9A-F]{40}$/);
    assert.ok(facts.daysLeft >= 363 && facts.daysLeft <= 365, String(facts.daysLeft));
  });

  it('the order of key and certificate in the PEM does not matter', () => {
    assert.equal(inspectCertificatePem(`${valid.cert}\n${valid.key}`, { secretName: 'ops-cert' }).subject, 'CN=mail-app');
  });

  it('an expired certificate fails with ECERTIFICATE saying when it expired', async () => {
    const expired = await certificate(new Date(Date.now() - 400 * DAY), new Date(Date.now() - 2 * DAY));
    const error = inspectionError(`${expired.key}${expired.cert}`);
    assert.equal(error.code, 'ECERTIFICATE');
    assert.equal(error.field, 'auth.certificate');
    assert.match(error.message, /^secret "ops-cert": the certificate [0-9A-F]{40} expired on \d{4}-\d\d-\d\dT/);
    assert.match(error.hint!, /upload its public part to the app registration/);
  });

  const broken: Array<{ name: string; pem: () => string; message: RegExp }> = [
    { name: 'a certificate without its private key', pem: () => valid.cert, message: /holds no private key/ },
    { name: 'a private key without its certificate', pem: () => valid.key, message: /holds no certificate/ },
    { name: 'a password-protected key', pem: () => `${encryptedKey()}${valid.cert}`, message: /encrypted with a password/ },
    { name: 'a key of another certificate', pem: () => `${otherKey()}${valid.cert}`, message: /does not belong to the certificate/ },
    { name: 'a damaged certificate', pem: () => `${valid.key}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`, message: /certificate cannot be read/ },
    { name: 'something that is not PEM', pem: () => 'MIIC...base64-of-a-pfx', message: /holds no private key/ },
  ];
  for (const b of broken) {
    it(`${b.name} fails with ECERTIFICATE, and the message never quotes the PEM`, () => {
      const pem = b.pem();
      const error = inspectionError(pem);
      assert.equal(error.code, 'ECERTIFICATE');
      assert.match(error.message, b.message);
      assert.ok(!error.message.includes('-----BEGIN'));
      assert.ok(!error.message.includes(pem.length > 80 ? pem.slice(40, 80) : pem));
    });
  }
});

function encryptedKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}

function otherKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}
