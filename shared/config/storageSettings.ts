import { MailError } from '../errors.js';
import { publicStorageServiceUri } from './cloud.js';
import { stripEnds } from '../text.js';

/**
 * How the app reaches its storage account, read as the Functions host reads the same settings
 * (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity),
 * so the host and the app always use one account the same way:
 * - `AzureWebJobsStorage` holds a connection string (Azurite locally, an account key or SAS); or
 * - it is unset and the identity-based `AzureWebJobsStorage__*` settings name the account
 *   (`__blobServiceUri`, `__queueServiceUri`, `__tableServiceUri`, or `__accountName` in the public
 *   cloud) and the credential (`__credential=managedidentity` with `__clientId` or
 *   `__managedIdentityResourceId`; `__tenantId` + `__clientId` + `__clientSecret`; or, with none of
 *   these, DefaultAzureCredential, as for local development).
 */
export type StorageConnection =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; serviceUris: StorageServiceUris; credential: StorageCredentialSetting };

export interface StorageServiceUris {
  blob: string;
  queue: string;
  table: string;
}

export type StorageCredentialSetting =
  | { kind: 'managedIdentity'; clientId?: string; resourceId?: string }
  | { kind: 'clientSecret'; tenantId: string; clientId: string; clientSecret: string }
  | { kind: 'default'; tenantId?: string; clientId?: string };

export const STORAGE_SETTING = 'AzureWebJobsStorage';
const PREFIX = `${STORAGE_SETTING}__`;
const SERVICES = ['blob', 'queue', 'table'] as const;

/** The storage connection of these app settings; undefined when none is set (checked where state is first used). */
export function storageConnectionSetting(env: NodeJS.ProcessEnv): StorageConnection | undefined {
  const connectionString = text(env, STORAGE_SETTING);
  // The host uses the connection string when there is one, whatever else is set.
  if (connectionString !== undefined) return { kind: 'connectionString', connectionString };
  if (!Object.keys(env).some((name) => name.startsWith(PREFIX) && text(env, name) !== undefined)) return undefined;
  return { kind: 'identity', serviceUris: serviceUris(env), credential: credential(env) };
}

function serviceUris(env: NodeJS.ProcessEnv): StorageServiceUris {
  const accountName = text(env, `${PREFIX}accountName`);
  if (accountName !== undefined && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    throw new MailError('ECONFIG', `${PREFIX}accountName must be a storage account name (3 to 24 lower-case letters and digits), not "${accountName}"`, {
      field: `${PREFIX}accountName`,
      hint: `Set ${PREFIX}accountName to the account's name, or set ${PREFIX}blobServiceUri, __queueServiceUri and __tableServiceUri instead.`,
    });
  }
  const uri = (service: (typeof SERVICES)[number]): string => {
    const field = `${PREFIX}${service}ServiceUri`;
    const raw = text(env, field);
    if (raw === undefined) {
      if (accountName !== undefined) return publicStorageServiceUri(accountName, service);
      throw new MailError('ECONFIG', `${field} is not set`, {
        field,
        hint: `Identity-based storage needs the account's blob, queue and table endpoints: set ${PREFIX}blobServiceUri, ${PREFIX}queueServiceUri and ${PREFIX}tableServiceUri (the app keeps its state in tables too), or ${PREFIX}accountName for an account in the public cloud.`,
      });
    }
    // A bearer token is sent only over TLS (the SDK refuses otherwise), so an http endpoint could never work.
    if (!URL.canParse(raw) || new URL(raw).protocol !== 'https:') {
      throw new MailError('ECONFIG', `${field} must be an https URL, not "${raw}"`, {
        field,
        hint: `Set ${field} to the account's ${service} endpoint as the portal shows it, such as https://<account>.${service}.<the cloud's storage suffix>.`,
      });
    }
    return stripEnds(raw, '/', 'end');
  };
  return { blob: uri('blob'), queue: uri('queue'), table: uri('table') };
}

function credential(env: NodeJS.ProcessEnv): StorageCredentialSetting {
  const kind = text(env, `${PREFIX}credential`);
  const clientId = text(env, `${PREFIX}clientId`);
  const tenantId = text(env, `${PREFIX}tenantId`);
  const resourceId = text(env, `${PREFIX}managedIdentityResourceId`);
  const clientSecret = text(env, `${PREFIX}clientSecret`);
  if (kind !== undefined) {
    if (kind.toLowerCase() !== 'managedidentity') {
      throw new MailError('ECONFIG', `${PREFIX}credential must be "managedidentity", not "${kind}"`, {
        field: `${PREFIX}credential`,
        hint: `Set ${PREFIX}credential to managedidentity (with ${PREFIX}clientId for a user-assigned identity), or remove it to use the developer's credential (DefaultAzureCredential).`,
      });
    }
    if (clientId !== undefined && resourceId !== undefined) {
      throw new MailError('ECONFIG', `${PREFIX}clientId and ${PREFIX}managedIdentityResourceId both name an identity`, {
        field: `${PREFIX}managedIdentityResourceId`,
        hint: 'Name the user-assigned identity once: by its client id or by its resource id.',
      });
    }
    return { kind: 'managedIdentity', ...(clientId !== undefined && { clientId }), ...(resourceId !== undefined && { resourceId }) };
  }
  if (clientSecret !== undefined) {
    for (const [field, value] of [['tenantId', tenantId], ['clientId', clientId]] as const) {
      if (value === undefined) {
        throw new MailError('ECONFIG', `${PREFIX}clientSecret is set but ${PREFIX}${field} is not`, {
          field: `${PREFIX}${field}`,
          hint: `A service principal's secret needs its tenant and client id: set ${PREFIX}tenantId and ${PREFIX}clientId.`,
        });
      }
    }
    return { kind: 'clientSecret', tenantId: tenantId!, clientId: clientId!, clientSecret };
  }
  return { kind: 'default', ...(tenantId !== undefined && { tenantId }), ...(clientId !== undefined && { clientId }) };
}

function text(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}
