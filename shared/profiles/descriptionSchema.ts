import { z } from 'zod';
import type { ProfilesDescription } from './describe.js';

/** What GET /api/profiles answers (describeProfiles), for the OpenAPI document: loaded only when it is built. */
export const profilesDescriptionSchema = z.object({
  source: z.string().meta({ description: 'MAIL_PROFILES, built-in, or the profiles file name.' }),
  profiles: z.array(
    z.object({
      name: z.string(),
      mailbox: z.string(),
      auth: z.string().meta({ description: 'The auth type: clientSecret, certificate, managedIdentity, federated, delegated.' }),
      cloud: z.string(),
      send: z.object({ via: z.string(), allowedFrom: z.array(z.string()) }).optional(),
      receive: z.object({ via: z.string() }).optional(),
    }),
  ),
}) satisfies z.ZodType<ProfilesDescription>;
