// placeholder, replaced by the SMTP transport work
import type { Profile } from '../../config/profiles.js';
import type { TransportDeps } from '../index.js';
export class SmtpSender { readonly via = 'smtp' as const; constructor(_p: Profile, _d: TransportDeps) {} async send(): Promise<never> { throw new Error('not yet'); } }
