import { createPrivateKey, X509Certificate } from 'node:crypto';
import { MailError } from '../errors.js';
import { pemBlocks } from '../identity/credentialExpiry.js';

const DAY_MS = 24 * 3600 * 1000;

export interface CertificateFacts {
  subject: string;
  /** SHA-1 thumbprint as the Entra portal shows it under Certificates & secrets. */
  thumbprint: string;
  notBefore: Date;
  notAfter: Date;
  /** Whole days until notAfter. */
  daysLeft: number;
}

/**
 * Checks the PEM a certificate profile keeps in the secret store the way
 * ClientCertificateCredential will use it: a private key (unencrypted: the profile has no
 * password setting) and the certificate it belongs to, valid now.
 * Throws ECERTIFICATE naming what is wrong; never includes the PEM in the message.
 */
export function inspectCertificatePem(pem: string, options: { secretName: string; now?: Date }): CertificateFacts {
  const now = options.now ?? new Date();
  const blocks = pemBlocks(pem);
  const fail = (message: string, hint: string, cause?: unknown) => new MailError('ECERTIFICATE', `secret "${options.secretName}": ${message}`, { field: 'auth.certificate', hint, cause });
  const storeHint = `Store the certificate and its unencrypted private key together as PEM in the secret "${options.secretName}" (Key Vault: a secret, or a certificate imported with an exportable key).`;

  const keyBlock = blocks.find((b) => /PRIVATE KEY$/.test(b.label));
  if (!keyBlock) throw fail('the PEM holds no private key', storeHint);
  if (keyBlock.label === 'ENCRYPTED PRIVATE KEY') throw fail('the private key is encrypted with a password', `${storeHint} Export it without a password (openssl pkcs8 -nocrypt).`);
  const certBlock = blocks.find((b) => b.label === 'CERTIFICATE');
  if (!certBlock) throw fail('the PEM holds no certificate', storeHint);

  // OpenSSL's parse errors say nothing a person can act on beyond "cannot be read": they stay the cause.
  const key = readOrFail(() => createPrivateKey(keyBlock.text), (cause) => fail('the private key cannot be read', storeHint, cause));
  const certificate = readOrFail(() => new X509Certificate(certBlock.text), (cause) => fail('the certificate cannot be read', storeHint, cause));
  if (!certificate.checkPrivateKey(key)) {
    throw fail('the private key does not belong to the certificate', `${storeHint} The first certificate in the PEM must be the one whose key it holds.`);
  }

  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  const facts: CertificateFacts = {
    subject: certificate.subject.replace(/\n/g, ', '),
    thumbprint: certificate.fingerprint.replace(/:/g, ''),
    notBefore,
    notAfter,
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
  };
  const renewHint = 'Create a new certificate, upload its public part to the app registration (Certificates & secrets), and store the new PEM in the secret store.';
  if (notAfter <= now) throw fail(`the certificate ${facts.thumbprint} expired on ${notAfter.toISOString()}`, renewHint);
  if (notBefore > now) throw fail(`the certificate ${facts.thumbprint} is not valid before ${notBefore.toISOString()}`, 'Check this host\'s clock, or wait until the certificate becomes valid.');
  return facts;
}

function readOrFail<T>(read: () => T, failure: (cause: unknown) => MailError): T {
  try {
    return read();
  } catch (error) {
    throw failure(error);
  }
}
